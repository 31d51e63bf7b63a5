"""Secret scrubbing (workflows.scrub): what every log line, error and output goes through."""

from workflows.scrub import scrub_secrets


def test_a_secret_inside_another_leaves_nothing_behind():
    url = "https://hooks.example/T0/B1/abcdef-token"
    assert scrub_secrets(f"POST {url} failed", ["abcdef-token", url]) == "POST *** failed"


def test_every_occurrence_and_the_mask_and_short_secrets():
    assert scrub_secrets("k1 and k1", ["k1"]) == "*** and ***"
    assert scrub_secrets("k1 and secret", ["k1", "secret"], mask="[hidden]", min_length=4) == "k1 and [hidden]"
    assert scrub_secrets("nothing", ["", "absent"]) == "nothing"
