"""Plain-Python services: I/O and logic, no Reflex imports."""
