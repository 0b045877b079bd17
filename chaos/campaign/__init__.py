"""Experiments back to back on one cluster (campaign.py), with the cluster's health checked
before the first and after each (health.py for the verdicts, checker.py for gathering the
facts, probe.py for the probe application), and one report for all (report.py)."""
