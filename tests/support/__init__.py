"""What tests share besides fixtures: paths, builders, runstate processes, a webhook receiver,
the checks every stored run must pass. Fixtures live in conftest.py files, which may import from
here; nothing imports from a conftest.py."""
