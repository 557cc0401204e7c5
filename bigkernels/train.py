"""`python -m bigkernels train`: train a bigkernels model on offline data and
print one JSON line of results.

Models and their data: cnn, resnet18 -> digits as images; lstm -> digits as
rows (classifier) or text (character LM); transformer -> digits as 2x2
patches; gpt -> text. Under DDP (--ddp N relaunches through torchrun, gloo on
the CPU, nccl on CUDA) each rank trains on its shard of every epoch, every
rank evaluates the whole (small) test set, and rank 0 prints.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

MODELS = ("cnn", "resnet18", "lstm", "transformer", "gpt")
DATA = ("digits", "text")
# Defaults that reach the goals on 2 CPU cores (measured; docs/models.md).
DEFAULTS = {"cnn": (6, 64, 3e-3), "resnet18": (8, 64, 2e-3), "lstm": (20, 32, 3e-3),
            "transformer": (15, 64, 2e-3), "gpt": (3, 32, 3e-3)}  # epochs, batch size, lr
SEQ_LEN = 64


def add_arguments(p):
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--data", choices=DATA, default=None, help="default: text for gpt, digits otherwise")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--backend", default=None, help="force a bigkernels backend (default auto)")
    p.add_argument("--amp", action="store_true", help="autocast to bfloat16")
    p.add_argument("--compile", action="store_true", help="torch.compile(model, fullgraph=True)")
    p.add_argument("--compile-backend", default="inductor", help="torch.compile backend (aot_eager: no codegen)")
    p.add_argument("--ddp", type=int, default=0, metavar="N", help="N processes through torchrun")
    p.add_argument("--no-kernels", action="store_true", help="plain torch modules (the comparison baseline)")
    p.add_argument("--max-chars", type=int, default=200_000, help="size of the text corpus")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (1 is much faster on a loaded shared machine)")
    p.add_argument("--no-progress", action="store_true")


def _check(args):
    args.data = args.data or ("text" if args.model == "gpt" else "digits")
    if args.model in ("cnn", "resnet18", "transformer") and args.data != "digits":
        raise ValueError(f"--model {args.model} trains on --data digits only")
    if args.model == "gpt" and args.data != "text":
        raise ValueError("--model gpt trains on --data text only")
    epochs, batch, lr = DEFAULTS[args.model]
    args.epochs = epochs if args.epochs is None else args.epochs
    args.batch_size = batch if args.batch_size is None else args.batch_size
    args.lr = lr if args.lr is None else args.lr
    for name in ("epochs", "batch_size"):
        if getattr(args, name) <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.lr <= 0:
        raise ValueError(f"--lr must be positive, got {args.lr}")
    if args.ddp < 0:
        raise ValueError(f"--ddp must be >= 0, got {args.ddp}")


def build(args):
    """(model, (x_train, y_train), (x_test, y_test), is_language_model)."""
    from . import models
    from .data import load_digits, load_text

    kernels = not args.no_kernels
    torch.manual_seed(args.seed)
    if args.data == "text":
        corpus = load_text(args.max_chars)
        train, test = corpus.blocks(corpus.train, SEQ_LEN), corpus.blocks(corpus.test, SEQ_LEN)
        if args.model == "gpt":
            model = models.GPT(corpus.vocab_size, n_layer=4, n_head=4, n_kv_head=2, d_model=128,
                               max_seq_len=SEQ_LEN, kernels=kernels)
        else:
            model = models.LSTMLanguageModel(corpus.vocab_size, 128, 128, 2, tie_weights=True, kernels=kernels)
        return model, train, test, True
    layout = {"cnn": "image", "resnet18": "image", "lstm": "rows", "transformer": "patches"}[args.model]
    xtr, ytr, xte, yte = load_digits(layout, seed=args.seed)
    if args.model == "cnn":
        model = models.SimpleCNN(10, 1, width=32, kernels=kernels)
    elif args.model == "resnet18":
        model = models.resnet18(10, 1, small_input=True, width=16, kernels=kernels)
    elif args.model == "lstm":
        model = models.LSTMClassifier(8, 128, 10, 1, kernels=kernels)
    else:
        model = models.TransformerClassifier(10, input_dim=4, d_model=64, nhead=4, num_layers=2, max_len=16,
                                             dropout=0.1, kernels=kernels)
    return model, (xtr, ytr), (xte, yte), False


def _loss(model, x, y, lm):
    out = model(x)
    out = out[0] if isinstance(out, tuple) else out
    return F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1)), out


@torch.no_grad()
def evaluate(model, data, lm, batch_size, device, amp):
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for i in range(0, len(data[0]), batch_size):
        x, y = data[0][i:i + batch_size].to(device), data[1][i:i + batch_size].to(device)
        with torch.autocast(device.type, torch.bfloat16, enabled=amp):
            loss, out = _loss(model, x, y, lm)
        loss_sum += loss.item() * y.numel()
        total += y.numel()
        correct += (out.argmax(-1) == y).sum().item()
    model.train()
    mean = loss_sum / total
    return {"test_perplexity": math.exp(mean)} if lm else {"test_accuracy": correct / total, "test_loss": mean}


def _progress(epoch, epochs, step, steps, loss, quiet):
    if quiet or not sys.stderr.isatty():  # a log file gets the per-epoch lines only
        return
    width = 30
    done = int(width * step / steps)
    sys.stderr.write(f"\repoch {epoch}/{epochs} [{'#' * done}{'.' * (width - done)}] {step}/{steps} "
                     f"loss {loss:.4f}")
    sys.stderr.flush()


def run(args):
    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.ddp and "LOCAL_RANK" not in os.environ:
        return _launch(args)
    distributed = "LOCAL_RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1
    rank, world = 0, 1
    device = torch.device(args.device)
    if distributed:
        import torch.distributed as dist

        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
            torch.cuda.set_device(device)
    if args.backend:
        from .backends import use_backend

        use_backend(args.backend)
    model, train, test, lm = build(args)
    model.to(device)
    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)
    if args.compile:
        net = torch.compile(net, fullgraph=not distributed, backend=args.compile_backend)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01 if lm else 1e-4)
    steps_per_epoch = math.ceil(len(train[0]) / world / args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    quiet = args.no_progress or rank != 0
    gen = torch.Generator().manual_seed(args.seed)
    samples, start, metrics = 0, time.perf_counter(), {}
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(train[0]), generator=gen)[rank::world]  # same permutation on every rank
        epoch_start, loss_sum = time.perf_counter(), 0.0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch_size:(step + 1) * args.batch_size]
            if len(idx) == 0:  # shards differ by at most one sample: keep the ranks in step
                idx = order[:args.batch_size]
            x, y = train[0][idx].to(device), train[1][idx].to(device)
            with torch.autocast(device.type, torch.bfloat16, enabled=args.amp):
                loss, _ = _loss(net, x, y, lm)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            samples += len(idx) * world
            loss_sum += loss.item()
            _progress(epoch, args.epochs, step + 1, steps_per_epoch, loss.item(), quiet)
        metrics = evaluate(model, test, lm, 256, device, args.amp)
        if rank == 0:
            shown = " ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            sys.stderr.write(f"\repoch {epoch}/{args.epochs} train_loss {loss_sum / steps_per_epoch:.4f} {shown} "
                             f"({time.perf_counter() - epoch_start:.1f} s){' ' * 20}\n")
    seconds = time.perf_counter() - start
    result = {"model": args.model, "data": args.data, **{k: round(v, 4) for k, v in metrics.items()},
              "epochs": args.epochs, "seconds": round(seconds, 2), "samples_per_second": round(samples / seconds, 1),
              "kernels": not args.no_kernels, "backend": args.backend or "auto", "world_size": world,
              "swapped": len(model.swap_report.swapped) if getattr(model, "swap_report", None) else 0}
    if rank == 0:
        print(json.dumps(result), flush=True)
    if distributed:
        torch.distributed.destroy_process_group()
    return 0


def _launch(args):
    """Re-run this command under torchrun with N processes on this machine."""
    from torch.distributed.run import main as torchrun

    torchrun(["--standalone", f"--nproc_per_node={args.ddp}", "-m", "bigkernels", "train"] + _to_argv(args))
    return 0


def _to_argv(args):
    out = ["--model", args.model, "--data", args.data, "--epochs", str(args.epochs), "--batch-size",
           str(args.batch_size), "--lr", str(args.lr), "--device", args.device, "--ddp", str(args.ddp),
           "--compile-backend", args.compile_backend, "--max-chars", str(args.max_chars), "--seed", str(args.seed)]
    if args.threads:
        out += ["--threads", str(args.threads)]
    if args.backend:
        out += ["--backend", args.backend]
    for flag in ("amp", "compile", "no_kernels", "no_progress"):
        if getattr(args, flag):
            out.append("--" + flag.replace("_", "-"))
    return out
