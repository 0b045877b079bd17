import pytest

from serve_core.config import AutoscalingConfig, DeploymentOptions, HTTPOptions, parse
from serve_core.config_file import ServeConfig
from serve_core.errors import ConfigError


def test_defaults_match_ray_serve():
    o = DeploymentOptions()
    assert (o.max_ongoing_requests, o.max_queued_requests) == (5, -1)
    assert (o.health_check_period_s, o.health_check_timeout_s) == (10.0, 30.0)
    assert (o.graceful_shutdown_wait_loop_s, o.graceful_shutdown_timeout_s) == (2.0, 20.0)
    assert o.actor_options() == {"num_cpus": 1}
    assert HTTPOptions().host == "127.0.0.1" and HTTPOptions().port == 8000


def test_bad_option_names_field_and_value():
    with pytest.raises(ConfigError) as e:
        parse(DeploymentOptions, {"max_ongoing_requests": 0}, "Model")
    assert e.value.field == "Model.max_ongoing_requests"
    assert e.value.value == 0
    assert "greater than or equal to 1" in str(e.value)


def test_unknown_option_is_rejected():
    with pytest.raises(ConfigError) as e:
        parse(DeploymentOptions, {"num_replica": 2})
    assert e.value.field == "num_replica"


def test_unknown_actor_option_names_allowed_ones():
    with pytest.raises(ConfigError) as e:
        parse(DeploymentOptions, {"ray_actor_options": {"num_gpu": 1}})
    assert "num_gpu" in str(e.value) and "num_gpus" in str(e.value)


def test_fractional_gpu_accepted():
    o = parse(DeploymentOptions, {"ray_actor_options": {"num_gpus": 0.5, "num_cpus": 0.25}})
    assert o.actor_options() == {"num_gpus": 0.5, "num_cpus": 0.25}


def test_autoscaling_bounds_cross_checked():
    with pytest.raises(ConfigError) as e:
        parse(AutoscalingConfig, {"min_replicas": 3, "max_replicas": 2})
    assert "min_replicas=3" in str(e.value) and "max_replicas=2" in str(e.value)
    with pytest.raises(ConfigError):
        parse(AutoscalingConfig, {"min_replicas": 1, "max_replicas": 4, "initial_replicas": 5})


def test_autoscaling_and_fixed_replicas_conflict():
    with pytest.raises(ConfigError) as e:
        parse(DeploymentOptions, {"num_replicas": 2, "autoscaling_config": {"max_replicas": 3}})
    assert "num_replicas='auto'" in str(e.value)


def test_target_replicas():
    assert DeploymentOptions(num_replicas=3).target_replicas() == 3
    o = parse(DeploymentOptions, {"autoscaling_config": {"min_replicas": 0, "max_replicas": 3, "initial_replicas": 2}})
    assert o.target_replicas() == 2


def test_yaml_schema_errors_name_the_path():
    with pytest.raises(ConfigError) as e:
        parse(ServeConfig, {"applications": [{"name": "a", "import_path": "m:app", "route_prefix": "nope"}]})
    assert e.value.field == "applications.0.route_prefix"
    assert "must start with '/'" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse(ServeConfig, {"applications": [
            {"name": "a", "import_path": "m:app", "route_prefix": "/x"},
            {"name": "a", "import_path": "m:app", "route_prefix": "/y"},
        ]})
    assert "share name" in str(e.value)
    with pytest.raises(ConfigError) as e:
        parse(ServeConfig, {"applications": []})
    assert e.value.field == "applications"
