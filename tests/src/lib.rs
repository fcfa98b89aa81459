//! The network-namespace lab used by end-to-end tests, `make demo` and `make bench`.
