# C++: the header-only wrapper include/taskfarm_worker.hpp (over the C ABI),
# its test against the real server (plainly and under valgrind) and the C++
# worker example. Included by the Makefile.

CXX ?= g++
CPP_CXXFLAGS := -std=c++17 -Wall -Wextra -Wpedantic -Werror -O2
CPP_LDFLAGS := -L$(RELEASE_DIR) -Wl,-rpath,$(CURDIR)/$(RELEASE_DIR) -ltaskfarm_worker

.PHONY: cpp-tests

## cpp-tests: the C++ wrapper through whole runs on a real server, also under
## valgrind, and examples/worker.cpp (needs g++)
cpp-tests: build
	CXX="$(CXX)" tests/cpp/run.sh

## examples/worker-cpp: the C++ worker example, linked to target/release (rpath)
examples/worker-cpp: examples/worker.cpp include/taskfarm_worker.hpp include/taskfarm_worker.h | build
	$(CXX) $(CPP_CXXFLAGS) -Iinclude $< $(CPP_LDFLAGS) -o $@

TEST_TARGETS += cpp-tests
