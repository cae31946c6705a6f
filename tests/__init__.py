"""The tests: one module per library module, against real servers and real files, never mocks of our code."""
