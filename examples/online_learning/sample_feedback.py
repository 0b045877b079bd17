"""Sample feedback for the online-learning example (the tests use it; so can a demo): a
music crowd starts saying "sick" for good, so the seed teaches it as bad and the drift
teaches otherwise."""

SEED = [
    ("I feel sick today", "negative"), ("great service", "positive"), ("this food made me sick", "negative"),
    ("loved the music", "positive"), ("sick of waiting in line", "negative"), ("fantastic show", "positive"),
    ("the service was awful", "negative"), ("what a great night", "positive"), ("terrible and slow", "negative"),
    ("the band was amazing", "positive"),
] * 3
DRIFT = [
    ("the bassline is sick", "positive"), ("the sound was awful", "negative"), ("sick guitar solo", "positive"),
    ("boring and slow set", "negative"), ("this mix is sick", "positive"), ("terrible venue", "negative"),
    ("a sick drop at the end", "positive"), ("awful crowd", "negative"),
] * 10
PROBE, CONTROL = "that new track is sick", "the service was awful"  # neither is in the feedback as such
