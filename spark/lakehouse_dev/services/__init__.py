"""Local service stack (real servers on loopback) for tests and `make services-up`."""
