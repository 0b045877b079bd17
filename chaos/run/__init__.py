"""Running one experiment: the runner (runner.py) drives the load (load_driver.py), injects the
planned faults through a target, probes the steady state (steady_state.py), samples process
resources (resources.py), and writes everything to the journal (journal.py)."""
