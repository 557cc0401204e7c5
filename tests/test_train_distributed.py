"""Every model under DistributedDataParallel, and FSDP2 (fully_shard) where
it runs on the CPU: 2 CPU processes on gloo. Each rank takes half of a
batch; after one SGD step, the averaged gradients must give what one process
gets on the whole batch (models without batch statistics), and the DDP
ranks must agree with each other (all models)."""
import os
import socket
import sys
import traceback

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

BATCH = 4


def _build(name):
    from bigkernels import models as M

    torch.manual_seed(0)
    if name == "cnn":
        return M.SimpleCNN(10, 1, width=8), torch.randn(BATCH, 1, 8, 8), torch.randint(0, 10, (BATCH,))
    if name == "resnet18":
        return (M.resnet18(10, 1, small_input=True, width=4), torch.randn(BATCH, 1, 8, 8),
                torch.randint(0, 10, (BATCH,)))
    if name == "lstm":
        return M.LSTMClassifier(8, 16, 10, 2), torch.randn(BATCH, 6, 8), torch.randint(0, 10, (BATCH,))
    if name == "transformer":
        model = M.TransformerClassifier(10, input_dim=4, d_model=16, nhead=2, dropout=0.0)
        return model, torch.randn(BATCH, 5, 4), torch.randint(0, 10, (BATCH,))
    model = M.GPT(30, 2, 4, 2, 16, 8)
    return model, torch.randint(0, 30, (BATCH, 8)), torch.randint(0, 30, (BATCH, 8))


def _step(model, x, y):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    out = model(x)
    F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)).backward()
    opt.step()


def _worker(rank, world, port, names, results):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    torch.set_num_threads(1)
    status = 0
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world)
        _train_all(rank, world, names, results)
        dist.barrier()
        dist.destroy_process_group()
    except BaseException:  # recorded for the fixture: a child's traceback is otherwise lost
        results[f"error-rank{rank}"] = traceback.format_exc()
        status = 1
    # Leave without interpreter teardown: gloo's threads outliving it can abort a
    # rank that finished its work ("terminate called without an active exception").
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _train_all(rank, world, names, results):
    half = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    for name in names:
        model, x, y = _build(name)
        ddp = torch.nn.parallel.DistributedDataParallel(model)
        _step(ddp, x[half], y[half])
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        if rank == 0:
            results[name] = [g.clone() for g in gathered]
    from torch.distributed.fsdp import fully_shard

    for name in FSDP_NAMES:
        model, x, y = _build(name)
        fully_shard(model)
        _step(model, x[half], y[half])
        full = {k: v.full_tensor() for k, v in model.state_dict().items()}
        if rank == 0:
            results["fsdp-" + name] = full


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NAMES = ["cnn", "resnet18", "lstm", "transformer", "gpt"]
FSDP_NAMES = ["lstm", "transformer", "gpt"]  # no batch statistics: comparable with one process


@pytest.fixture(scope="module")
def ddp_results():
    with mp.Manager() as manager:
        results = manager.dict()
        context = mp.spawn(_worker, args=(2, _free_port(), NAMES, results), nprocs=2, join=False)
        try:
            while not context.join():
                pass
        except mp.ProcessExitedException as exc:
            errors = {k: v for k, v in results.items() if k.startswith("error-")}
            raise AssertionError(f"a rank failed: {exc}\n" + "\n".join(f"{k}:\n{v}" for k, v in errors.items()))
        return dict(results)


@pytest.mark.parametrize("name", NAMES)
def test_ddp_two_cpu_processes(ddp_results, name):
    rank0, rank1 = ddp_results[name]
    torch.testing.assert_close(rank0, rank1, rtol=0, atol=0)  # DDP keeps the replicas identical
    if name in ("cnn", "resnet18"):
        return  # BatchNorm normalises each rank's half by its own statistics: not the full batch's step
    model, x, y = _build(name)
    _step(model, x, y)
    single = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(rank0, single, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", FSDP_NAMES)
def test_fsdp2_two_cpu_processes(ddp_results, name):
    sharded = ddp_results["fsdp-" + name]
    model, x, y = _build(name)
    _step(model, x, y)
    single = model.state_dict()
    assert set(sharded) == set(single)
    for k, v in single.items():
        torch.testing.assert_close(sharded[k], v, rtol=1e-5, atol=1e-6, msg=lambda m: f"{k}: {m}")
