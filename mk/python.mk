# mk/python.mk: the Python package taskfarm-worker-rs (python/), the
# taskfarm-worker 0.4.0 API over the C ABI. Included by the Makefile.
#
#   make wheel          python/wheel.sh: the manylinux wheel in dist/, the
#                       library inside (make build's static library linked by
#                       zig against glibc 2.17), its version the crate's;
#                       checked and tagged by auditwheel (tools pinned in
#                       python/tools-requirements.txt, in build/python-tools/)
#   make python-tests   tests/python/run.sh: the package against the real
#                       server side by side with taskfarm-worker 0.4.0, the
#                       upstream example and manageTF with one import line
#                       changed, Python and C workers on one run, and the
#                       wheel installed into a fresh venv with no compiler

.PHONY: wheel python-tests

## wheel: the manylinux wheel of taskfarm-worker-rs in dist/ (no Rust or compiler needed to install it)
wheel: build
	python/wheel.sh

## python-tests: the Python package against the real server and the Python client; the wheel in a fresh venv
python-tests: build wheel
	tests/python/run.sh

TEST_TARGETS += python-tests
