"""Unit tests of the benchmark package (make bench-unit, part of make test)."""
