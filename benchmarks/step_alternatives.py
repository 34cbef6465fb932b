"""Ways to make a 784-wide training step cheaper, each timed against the step the package runs.

On the MNIST autoencoder of ``bench_peers.py`` (784-1000-500-250-30-250-500-
1000-784, ReLU, linear output, mean squared error, batch 256, Adam(1e-3)),
a training step is matrix products and Adam's update, and little else
(``profile_step.py``). This script times, step by step, what could still
make it cheaper, each written out by hand without autograd:

- ``the package's step``: what ``sk_stackae._accel.fast_step.FastStep`` runs on
  this network, op for op: ``addmm`` and an in-place ReLU per layer, the
  loss's value and gradient, per layer the weight gradient written into a persistent
  buffer, the bias gradient, ``threshold_backward`` written over the
  incoming gradient, and the input's gradient, then one fused Adam update
  of every parameter;
- ``floor: products + Adam``: the same without the ReLUs (a linear
  network) and the loss's value: the products, bias sums, loss gradient
  and Adam update that
  any float32 step of this network runs (``bench_peers.py`` times it as a
  whole fit);
- ``ReLU gradient into a fresh tensor``: the package's step before it
  wrote ``threshold_backward`` over the incoming gradient;
- ``bias as a ones column of the products``: every layer's input kept
  with a column of ones beside it and its bias as one more column of its
  weight, so that one product adds the bias and one product gives the
  weight's and the bias's gradients (no bias broadcast into each output,
  no bias sums), and Adam updates eight tensors instead of sixteen;
- ``feature-major activations``: activations stored as features x rows
  (``W @ X^T``), which changes the layout every product reads and writes;
- ``Adam per layer, in the backward pass``: each layer's parameters updated
  as soon as their gradients exist, while they are still in cache;
- ``two 1-thread products at once``: one torch thread, and a second Python
  thread so that two products run at once: the two halves of each forward
  product, and each layer's weight gradient beside its input's gradient.

Every variant runs with denormal floats flushed to zero, as the package's
training does on the CPU (``torch.set_flush_denormal``), here set before
torch starts its intra-op threads, which then inherit it (the package sets
it in every torch thread for the time of a fit: see
``sk_stackae._accel.denormals``); with
``--keep-denormals`` they run without, as a plain PyTorch loop does, and
the last column shows how many of Adam's first moments have decayed into
denormal floats by the end, and the last line what Adam's update alone
then costs (the weights into ReLU units that stopped
firing, whose gradient is exactly zero; see
``sk_stackae._accel.denormals``).

Every variant trains its own copy of the same network on the same
batches; they take turns, a block of steps each, round after round, so that
a slow spell of the machine hits all of them. The table gives the median
time per step, round by round its ratio to the package's step, and the
largest difference of any weight from the package's step's at the end:
zero where a variant runs the same operations in the same order; where it
sums in another order (the feature-major products, the bias inside the
product), the rounding differs,
and the two trajectories drift apart a little step by step. The floor
trains another (linear) network.

Run ``python benchmarks/step_alternatives.py --data-dir ../shared/datasets/mnist``.
"""

import argparse
import copy
import itertools
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import torch
from _common import fused_adam, load_mnist_like, machine_description, print_table

BATCH_SIZE = 256
WIDTHS = [784, 1000, 500, 250, 30, 250, 500, 1000, 784]


LEARNING_RATE = 1e-3


class Network:
    """A copy of the network (He-initialised weights, zero biases) with its gradient buffers and Adam state."""

    def __init__(self, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.weights = [
            torch.randn(n_out, n_in, generator=generator) * (2.0 / n_in) ** 0.5
            for n_in, n_out in itertools.pairwise(WIDTHS)
        ]
        self.biases = [torch.zeros(n_out) for n_out in WIDTHS[1:]]
        self.parameters = [tensor for pair in zip(self.weights, self.biases, strict=True) for tensor in pair]
        self.gradients = [torch.zeros_like(p) for p in self.parameters]
        self.exp_avgs = [torch.zeros_like(p) for p in self.parameters]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.parameters]
        self.steps = torch.zeros(len(self.parameters))
        self.step_views = list(self.steps.unbind())

    @property
    def n_layers(self):
        return len(self.weights)

    def adam(self, indices=None):
        """Adam's fused update of the parameters at ``indices`` (all by default)."""
        indices = range(len(self.parameters)) if indices is None else indices
        fused_adam(
            [self.parameters[i] for i in indices],
            [self.gradients[i] for i in indices],
            [self.exp_avgs[i] for i in indices],
            [self.exp_avg_sqs[i] for i in indices],
            [self.step_views[i] for i in indices],
            LEARNING_RATE,
        )


def package_step(batch, net, relu=True, in_place_gradient=True, adam_per_layer=False, loss_value=True):
    last = net.n_layers - 1
    inputs = [batch]
    for layer in range(net.n_layers):
        output = torch.addmm(net.biases[layer], inputs[-1], net.weights[layer].t())
        if relu and layer < last:
            output.relu_()
        inputs.append(output)
    difference = inputs.pop() - batch
    if loss_value:
        # The package's step returns it, for the epoch's mean loss.
        torch.dot(difference.view(-1), difference.view(-1))
    grad = difference.mul_(2.0 / batch.numel())
    if adam_per_layer:
        net.steps.add_(1)
    for layer in reversed(range(net.n_layers)):
        if relu and layer < last:
            if in_place_gradient:
                torch.ops.aten.threshold_backward.grad_input(grad, inputs[layer + 1], 0, grad_input=grad)
            else:
                grad = torch.ops.aten.threshold_backward(grad, inputs[layer + 1], 0)
        torch.mm(grad.t(), inputs[layer], out=net.gradients[2 * layer])
        torch.sum(grad, dim=0, out=net.gradients[2 * layer + 1])
        if layer:
            grad = torch.mm(grad, net.weights[layer])
        if adam_per_layer:
            # After the input's gradient, which reads the old weights.
            net.adam((2 * layer, 2 * layer + 1))
    if not adam_per_layer:
        net.steps.add_(1)
        net.adam()


def feature_major_step(batch, net):
    last = net.n_layers - 1
    rows = batch.t().contiguous()
    inputs = [rows]
    for layer in range(net.n_layers):
        output = torch.addmm(net.biases[layer].unsqueeze(1), net.weights[layer], inputs[-1])
        if layer < last:
            output.relu_()
        inputs.append(output)
    grad = (inputs.pop() - rows).mul_(2.0 / batch.numel())
    for layer in reversed(range(net.n_layers)):
        if layer < last:
            torch.ops.aten.threshold_backward.grad_input(grad, inputs[layer + 1], 0, grad_input=grad)
        torch.mm(grad, inputs[layer].t(), out=net.gradients[2 * layer])
        torch.sum(grad, dim=1, out=net.gradients[2 * layer + 1])
        if layer:
            grad = torch.mm(net.weights[layer].t(), grad)
    net.steps.add_(1)
    net.adam()


class ConcurrentProducts:
    """The package's step on one torch thread, with a second Python thread running a product beside each."""

    def __init__(self):
        self.pool = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))

    def both(self, first, second):
        pending = self.pool.submit(second)
        first()
        pending.result()

    def __call__(self, batch, net):
        last = net.n_layers - 1
        inputs = [batch]
        for layer in range(net.n_layers):
            weight, bias = net.weights[layer], net.biases[layer]
            output = torch.empty(len(batch), weight.shape[0])
            half = weight.shape[0] // 2
            self.both(
                partial(torch.addmm, bias[:half], inputs[-1], weight[:half].t(), out=output[:, :half]),
                partial(torch.addmm, bias[half:], inputs[-1], weight[half:].t(), out=output[:, half:]),
            )
            if layer < last:
                output.relu_()
            inputs.append(output)
        grad = (inputs.pop() - batch).mul_(2.0 / batch.numel())
        for layer in reversed(range(net.n_layers)):
            if layer < last:
                torch.ops.aten.threshold_backward.grad_input(grad, inputs[layer + 1], 0, grad_input=grad)
            torch.sum(grad, dim=0, out=net.gradients[2 * layer + 1])
            weight_gradient = net.gradients[2 * layer]
            if layer:
                incoming = torch.empty_like(inputs[layer])
                self.both(
                    partial(torch.mm, grad.t(), inputs[layer], out=weight_gradient),
                    partial(torch.mm, grad, net.weights[layer], out=incoming),
                )
                grad = incoming
            else:
                half = weight_gradient.shape[0] // 2
                self.both(
                    partial(torch.mm, grad[:, :half].t(), inputs[0], out=weight_gradient[:half]),
                    partial(torch.mm, grad[:, half:].t(), inputs[0], out=weight_gradient[half:]),
                )
        net.steps.add_(1)
        net.adam()


class OnesColumnProducts:
    """The package's step with each bias folded into its product: inputs ``[x, 1]``, weights ``[W, b]``.

    On its first call it moves the network's weights and biases into one
    tensor per layer, ``[W, b]``, and leaves ``net.weights`` and
    ``net.biases`` as views of it (so that the table compares its weights
    too); each layer's input lives in a buffer made once, whose last column
    is ones. Adam's state is laid out the same way.
    """

    def __init__(self):
        self.layers = None

    def prepare(self, net, n_rows):
        self.layers = []
        self.buffers = []
        for layer in range(net.n_layers):
            weight, bias = net.weights[layer], net.biases[layer]
            n_in = weight.shape[1]
            joined = torch.cat([weight, bias[:, None]], dim=1)
            net.weights[layer], net.biases[layer] = joined[:, :n_in], joined[:, n_in]
            self.layers.append(joined)
            inputs = torch.empty(n_rows, n_in + 1)
            inputs[:, n_in] = 1.0
            self.buffers.append(inputs)
        self.gradients = [torch.zeros_like(joined) for joined in self.layers]
        self.exp_avgs = [torch.zeros_like(joined) for joined in self.layers]
        self.exp_avg_sqs = [torch.zeros_like(joined) for joined in self.layers]
        net.exp_avgs = self.exp_avgs  # where the table counts denormal moments
        self.steps = torch.zeros(len(self.layers))
        self.step_views = list(self.steps.unbind())

    def __call__(self, batch, net):
        if self.layers is None:
            self.prepare(net, len(batch))
        last = net.n_layers - 1
        self.buffers[0][:, :-1].copy_(batch)
        for layer, joined in enumerate(self.layers):
            if layer < last:
                output = self.buffers[layer + 1][:, :-1]
                torch.mm(self.buffers[layer], joined.t(), out=output)
                output.relu_()
            else:
                output = torch.mm(self.buffers[layer], joined.t())
        difference = output - batch
        torch.dot(difference.view(-1), difference.view(-1))
        grad = difference.mul_(2.0 / batch.numel())
        for layer in reversed(range(net.n_layers)):
            if layer < last:
                torch.ops.aten.threshold_backward.grad_input(grad, self.buffers[layer + 1][:, :-1], 0, grad_input=grad)
            torch.mm(grad.t(), self.buffers[layer], out=self.gradients[layer])
            if layer:
                grad = torch.mm(grad, self.layers[layer][:, :-1])
        self.steps.add_(1)
        fused_adam(self.layers, self.gradients, self.exp_avgs, self.exp_avg_sqs, self.step_views, LEARNING_RATE)


def variants():
    """``{name: (step, torch threads or None for the caller's)}``."""
    return {
        "the package's step": (package_step, None),
        "floor: products + Adam": (partial(package_step, relu=False, loss_value=False), None),
        "ReLU gradient into a fresh tensor": (partial(package_step, in_place_gradient=False), None),
        "bias as a ones column of the products": (OnesColumnProducts(), None),
        "feature-major activations": (feature_major_step, None),
        "Adam per layer, in the backward pass": (partial(package_step, adam_per_layer=True), None),
        "two 1-thread products at once": (ConcurrentProducts(), 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with the MNIST IDX gzip files")
    parser.add_argument("--rounds", type=int, default=12, help="turns of each variant (default 12)")
    parser.add_argument("--steps", type=int, default=100, help="steps per turn (default 100)")
    parser.add_argument(
        "--keep-denormals", action="store_true", help="do not flush denormal floats to zero (a plain loop's default)"
    )
    args = parser.parse_args(argv)
    flushed = not args.keep_denormals and torch.set_flush_denormal(True)
    print(f"machine: {machine_description()}")
    data = torch.from_numpy(load_mnist_like(args.data_dir)[0])
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
    n_batches = len(data) // BATCH_SIZE
    contenders = variants()
    networks = {name: Network() for name in contenders}
    threads = torch.get_num_threads()
    times = {name: [] for name in contenders}
    batch_number = 0
    with torch.no_grad():
        for round_ in range(args.rounds + 1):  # round 0 warms up and is not counted
            for name, (step, n_threads) in contenders.items():
                batches = [
                    data[order[((batch_number + k) % n_batches) * BATCH_SIZE :][:BATCH_SIZE]] for k in range(args.steps)
                ]
                torch.set_num_threads(n_threads or threads)
                try:
                    started = time.perf_counter()
                    for batch in batches:
                        step(batch, networks[name])
                    elapsed = time.perf_counter() - started
                finally:
                    torch.set_num_threads(threads)
                if round_:
                    times[name].append(elapsed / args.steps)
            batch_number += args.steps
    # Adam's update alone, on a copy of the state the package's step left
    # (denormal moments and all, where they were kept).
    state = copy.deepcopy(networks["the package's step"])
    adam_seconds = []
    for _ in range(21):
        started = time.perf_counter()
        state.adam()
        adam_seconds.append(time.perf_counter() - started)
    if flushed:
        # Before counting: with the flags on, a denormal compares equal to zero.
        torch.set_flush_denormal(False)
    reference = times["the package's step"]
    reference_weights = networks["the package's step"].weights
    rows = []
    for name in contenders:
        ratios = [ours / theirs for ours, theirs in zip(reference, times[name], strict=True)]
        # Every variant but the floor computes the package's step: after the
        # same batches, the same weights up to float32 rounding.
        difference = max(
            float((ours - theirs).abs().max())
            for ours, theirs in zip(reference_weights, networks[name].weights, strict=True)
        )
        smallest_normal = torch.finfo(torch.float32).tiny
        denormal_moments = sum(
            int(((moment != 0) & (moment.abs() < smallest_normal)).sum()) for moment in networks[name].exp_avgs
        )
        rows.append(
            [
                name,
                f"{1e3 * statistics.median(times[name]):.2f}",
                f"{statistics.median(ratios):.3f}x",
                f"{min(ratios):.3f}x - {max(ratios):.3f}x",
                f"{difference:.1e}",
                f"{denormal_moments:,}",
            ]
        )
    print(
        f"\nMNIST network {'-'.join(map(str, WIDTHS))}, batch {BATCH_SIZE}, {args.rounds} rounds of "
        f"{args.steps} steps per variant, {threads} torch threads, denormals "
        f"{'flushed to zero' if flushed else 'kept'}\n"
    )
    print_table(
        [
            "variant",
            "ms per step (median)",
            "package's step / variant (above 1: faster)",
            "range over rounds",
            "weights: max difference",
            "denormal Adam moments",
        ],
        rows,
    )
    print(
        f"\nAdam's update of the {sum(p.numel() for p in state.parameters):,} parameters alone, on the state the "
        f"package's step left: {1e3 * statistics.median(adam_seconds):.2f} ms (median of 21)"
    )


if __name__ == "__main__":
    main()
