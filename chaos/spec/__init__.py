"""What an experiment says: the model (experiment.py), loading a file with errors that name the
field and the line (loading.py, checks.py, validation_errors.py), and the fault schedule it
plans (schedule.py). Pure: nothing here touches a cluster."""
