"""PyAV helpers shared by the decode and encode stages: opening files and colour conversion."""
