"""Process-group settings from SLURM's environment: node lists, ranks, the rendezvous."""
import pytest

from lib.utils.distributed import (
    DEFAULT_PORT,
    expand_nodelist,
    launcher_env,
    rendezvous_env,
    slurm_port,
)

SRUN_TASK_5 = {"SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_NTASKS": "8",
               "SLURM_STEP_NUM_TASKS": "8", "SLURM_NODELIST": "gpu[07-08]",
               "SLURM_JOB_ID": "4242"}


@pytest.mark.parametrize("nodelist, hosts", [
    ("localhost", ["localhost"]),
    ("a,b", ["a", "b"]),
    ("node[01-04,07]", ["node01", "node02", "node03", "node04", "node07"]),
    ("gpu-[1-2]", ["gpu-1", "gpu-2"]),
    ("node[9-11]", ["node9", "node10", "node11"]),
    ("n[1-2]-ib,login", ["n1-ib", "n2-ib", "login"]),
    ("rack[1-2]-n[08-09]", ["rack1-n08", "rack1-n09", "rack2-n08", "rack2-n09"]),
    ("cpu[001-002],gpu[1,3]", ["cpu001", "cpu002", "gpu1", "gpu3"]),
])
def test_nodelist_expands_like_scontrol_show_hostnames(nodelist, hosts):
    assert expand_nodelist(nodelist) == hosts


@pytest.mark.parametrize("nodelist, fault", [
    ("node[01-04", "unbalanced"), ("node]", "unbalanced"), ("n[[1]]", "unbalanced"),
    ("node[4-1]", "backwards"), ("node[a-b]", "'a-b'"), ("node[]", "''"), ("", "no host"),
])
def test_malformed_nodelist_is_an_error_naming_it(nodelist, fault):
    with pytest.raises(ValueError, match=fault) as error:
        expand_nodelist(nodelist)
    assert repr(nodelist) in str(error.value)


def test_without_any_launcher_the_process_is_alone():
    assert launcher_env({}) == (0, 0, 1)


def test_srun_task_takes_its_ranks_from_slurm():
    assert launcher_env(SRUN_TASK_5) == (5, 1, 8)


def test_a_smaller_srun_step_takes_the_steps_task_count():
    # srun -n 2 inside an allocation of 8 tasks: a group of 2, not 8.
    assert launcher_env(dict(SRUN_TASK_5, SLURM_PROCID="1", SLURM_STEP_NUM_TASKS="2")) == (1, 1, 2)


def test_a_batch_script_outside_srun_is_one_process():
    # sbatch --ntasks 8 runs the script once, outside any step: waiting for 7 more tasks would
    # hang until the process group's timeout.
    batch = {k: v for k, v in SRUN_TASK_5.items() if k != "SLURM_STEP_NUM_TASKS"}
    assert launcher_env(dict(batch, SLURM_PROCID="0", SLURM_LOCALID="0")) == (0, 0, 1)


def test_torchrun_variables_win_over_slurm():
    # torchrun started inside a SLURM allocation: its ranks, not the allocation's task counts.
    env = dict(SRUN_TASK_5, RANK="2", LOCAL_RANK="2", WORLD_SIZE="4")
    assert launcher_env(env) == (2, 2, 4)


def test_non_numeric_rank_variable_is_named():
    with pytest.raises(ValueError, match="SLURM_PROCID='x'"):
        launcher_env(dict(SRUN_TASK_5, SLURM_PROCID="x"))


def test_rendezvous_is_the_first_node_and_a_port_from_the_job_id():
    assert rendezvous_env(SRUN_TASK_5) == ("gpu07", 10000 + 4242)


def test_rendezvous_prefers_the_step_nodelist_and_the_environment():
    env = dict(SRUN_TASK_5, SLURM_STEP_NODELIST="gpu[08]")
    assert rendezvous_env(env) == ("gpu08", 14242)
    env.update(MASTER_ADDR="10.0.0.1", MASTER_PORT="23456")
    assert rendezvous_env(env) == ("10.0.0.1", 23456)


def test_rendezvous_without_job_id_uses_the_default_port():
    assert rendezvous_env({"SLURM_NODELIST": "n1"}) == ("n1", DEFAULT_PORT)


def test_rendezvous_without_any_host_is_a_clear_error():
    with pytest.raises(RuntimeError, match="MASTER_ADDR"):
        rendezvous_env({"SLURM_PROCID": "0"})


@pytest.mark.parametrize("job_id, port", [(0, 10000), (1, 10001), (19999, 29999), (20000, 10000),
                                          (123456789, 26789)])
def test_job_port_stays_between_10000_and_29999(job_id, port):
    assert slurm_port(job_id) == port


def test_jobs_with_nearby_ids_get_different_ports():
    assert len({slurm_port(i) for i in range(1000, 21000)}) == 20000
