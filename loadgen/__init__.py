"""Open-loop load with Locust: schedules of intended start times, client-side truth per request.

Locust runs in processes of its own (gevent patches the standard library, which breaks a Ray
driver in the same process); this package's library API starts and watches them.
"""
