"""The parameter and attribute documentation the classifier and the regressor share (numpydoc, filled in by each)."""

_SHARED_PARAMETERS_DOC = """
    hidden_layer_sizes : array-like of int or int, default=(256, 64)
        Widths of the encoder layers; the prediction head sits on the last.

    pretrained : StackedAutoencoder or None, default=None
        A fitted :class:`StackedAutoencoder` to start from: its encoder and
        decoder are copied into the network (never changed), greedy
        pretraining is skipped, and the architecture and the reconstruction
        loss are the autoencoder's (``hidden_layer_sizes``, ``activation``,
        ``code_activation``, ``output_activation``, ``tied_weights`` and
        ``loss`` left at their defaults, or set as the autoencoder has
        them). Pretrain once on the unlabeled rows, then fine-tune many
        heads, in a search over the head's parameters say: clones share the
        fitted autoencoder. None pretrains as ``pretrain_epochs`` says.

    activation : {"relu", "leaky_relu", "elu", "gelu", "tanh", "logistic", \
            "sigmoid", "identity"}, default="relu"
        Activation of the hidden layers, in the encoder and the decoder.

    code_activation : str or None, default=None
        Activation of the last encoder layer, the one the head reads. None
        uses ``activation``, as in a multilayer perceptron.

    output_activation : {"identity", "sigmoid", "logistic"}, default="identity"
        Activation of the reconstruction, for the unsupervised stages.

    loss : {"mse", "bce"}, default="mse"
        Reconstruction error of the first pretraining phase, of the
        unsupervised fine-tune and of ``reconstruction_weight`` (``"bce"``
        needs data in [0, 1] and a sigmoid output).

    tied_weights : bool, default=False
        Whether decoder layer ``k`` uses the transpose of encoder layer
        ``k``'s weight.

    pretrain_epochs : int or "auto", default="auto"
        Epochs of each greedy pretraining phase, on every row (labeled or
        not); 0 skips pretraining, which makes the estimator a plain
        multilayer perceptron of the same shape. ``"auto"``: in the
        semi-supervised recipe (see **Defaults** above), at least 5 and
        enough for 500 steps a layer; else 0.

    unsupervised_finetune_epochs : int or "auto", default="auto"
        Epochs of an end-to-end fine-tune of the whole autoencoder on the
        reconstruction loss, on every row, after pretraining; 0 skips it.
        ``"auto"``: in the semi-supervised recipe, at least 5 and enough
        for 500 steps, else 0; and 0 with ``pretrained``
        (the autoencoder's own fine-tune is its end-to-end training).

    head_warmup_epochs : int or "auto", default="auto"
        Epochs that train the prediction head alone on the labeled rows, the
        encoder frozen, before the supervised fine-tune: the head first fits
        the pretrained codes, so that its early, large errors do not reshape
        the encoder. ``"auto"``: in the semi-supervised recipe, at least 20
        and enough for 200 steps, else 0.

    finetune_epochs : int or "auto", default="auto"
        Epochs of the supervised fine-tune: the encoder and the head trained
        end to end on the labeled rows (the most, with early stopping).
        ``"auto"``: in the semi-supervised recipe at least 20 and enough for
        2000 steps (each epoch then sees every unlabeled row, see
        ``reconstruction_weight``), but no more epochs than 3500 steps take,
        so that a large data set's fit stays short; for a plain network at
        least 50 and enough for 1000 steps. At most 500 either way.

    average_from_epoch : int or None, default=None
        When set, the supervised fine-tune ends with the mean of the
        weights it had at the ends of its epochs, from this one (counted
        from 1) to the last, instead of its last weights: stochastic weight
        averaging (Izmailov et al., 2018). With a constant step size the
        weights scatter from epoch to epoch around a good region, and their
        mean sits nearer its centre. With ``early_stopping``, the mean is
        what is validated once averaging has begun, and the best validated
        weights are kept. :meth:`partial_fit` trains one epoch per call and
        does not average. Must not exceed ``finetune_epochs``.

    reconstruction_weight : float or "auto", default="auto"
        With a positive weight, the supervised fine-tune also minimises this
        weight times the reconstruction error of every row, labeled or not,
        so that the encoder keeps what pretraining taught it; each epoch
        then sees every unlabeled row once and the labeled rows repeated to
        make up half of it. ``"auto"``: 1.0 in the semi-supervised recipe,
        else 0.

    consistency_weight : float or "auto", default="auto"
        With a positive weight, the supervised fine-tune also trains the
        prediction of every row, labeled or not, from its corrupted input
        (``noise``, ``dropout``) toward the prediction of its clean input,
        with this weight: the divergence of the predicted class
        probabilities (classifier) or the squared difference of the
        predictions (regressor). The network learns to answer the same
        under the noise, which carries the labels to the unlabeled rows
        around them (random-perturbation consistency). It needs ``noise`` or
        ``dropout`` or ``adversarial_epsilon``, without which both
        predictions are the same; each epoch sees the rows as with
        ``reconstruction_weight``. ``"auto"``: 1.0 in the semi-supervised recipe (0
        if nothing corrupts the inputs), else 0.

    adversarial_epsilon : float or "auto", default="auto"
        With a positive value, the corrupted input that ``consistency_weight``
        trains on also moves, row by row, by a step of this length (L2 norm,
        in the units of ``X`` as the estimator receives it) in the direction
        that changes the row's prediction most, found by one extra gradient
        pass per batch: virtual adversarial training (Miyato et al., 2018).
        The network then learns to answer the same where it is most
        sensitive, not only under random noise. Every term of the supervised
        fine-tune trains on the moved rows. Each batch adds one pass through
        the encoder and the head, forward and back to the input. Needs
        ``consistency_weight > 0``. It is in the units of the rows the
        estimator receives, after a pipeline's scaling. ``"auto"``: in the
        semi-supervised recipe (with a consistency term), a tenth of the
        median L2 norm of the training rows; else 0.

    ladder : {"full", "gamma"} or None, default=None
        With ``"full"`` or ``"gamma"``, the supervised fine-tune trains the
        encoder and the head as a ladder network (Rasmus et al., 2015): a
        corrupted pass with Gaussian noise on the input and on every
        layer's batch-normalised pre-activation, whose predictions the
        labeled rows' error trains; a clean pass whose normalised
        pre-activations are the targets (it carries no gradient); and a
        decoder from the head down whose every level denoises the corrupted
        pre-activation with the signal from the level above (the paper's
        vanilla combinator), its squared distance from the clean target
        being that level's denoising cost, on every row, labeled or not.
        ``"gamma"`` keeps only the head's level: the paper's cheap
        Γ-model. Each epoch sees the rows as with ``reconstruction_weight``.
        At the end, the batch normalisation (on the training rows'
        statistics) is folded into the weights and biases: ``network_``,
        :meth:`transform` and ONNX export see a plain encoder and head, the
        clean pass as it predicts. ``noise``, ``noise_level`` and
        ``dropout`` act in the other stages as ever (``dropout`` also in
        the corrupted pass); the ladder's own terms replace
        ``reconstruction_weight``, ``consistency_weight`` and
        ``adversarial_epsilon``, whose ``"auto"`` is then 0 and which must
        not be set. Greedy pretraining still runs in front when
        ``pretrain_epochs`` asks for it (the paper trains from scratch:
        ``pretrain_epochs=0``). A continued fit (``warm_start``,
        :meth:`partial_fit`) keeps the encoder and the head and starts the
        ladder's decoder and optimiser afresh. Trains through autograd
        (no hand-derived step). None: the fine-tune without a ladder.

    ladder_noise : float, default=0.3
        Standard deviation of the ladder's Gaussian noise, on the input (in
        its units) and on every standardised pre-activation; 0.3 is the
        paper's.

    ladder_weights : array-like of float or "auto", default="auto"
        The weight of each level's denoising cost, from the input to the
        head's output: ``len(hidden_layer_sizes) + 2`` non-negative values.
        ``"auto"``: with ``ladder="full"`` the paper's weights on
        permutation-invariant MNIST, 10 on the first hidden layer and 0.1
        on every level above, and on the input 1000 per MNIST's mean
        column variance in [0, 1] (0.0673): ``1000 * 0.0673 / v``, with
        ``v`` the mean variance of the columns of ``X`` (rows weighed by
        ``sample_weight``), so that the input's cost weighs the same
        whatever the units of ``X`` (67 on standardised columns). With ``"gamma"``, 1 on the head's
        output and 0 elsewhere. Not chosen on this library's development
        sets.

    batch_size : int, default=256
        Rows per minibatch, clipped to the number of training rows.

    learning_rate : {"constant", "invscaling", "adaptive", "cosine"}, default="constant"
        The schedule of the step size within each phase, as in
        :class:`~sklearn.neural_network.MLPClassifier` (for every
        optimiser): ``"constant"`` keeps ``learning_rate_init``;
        ``"invscaling"`` sets it after each epoch to ``learning_rate_init /
        (t + 1) ** power_t``, with ``t`` the rows the phase has trained on;
        ``"adaptive"`` divides it by 5 each time the validation score (with
        ``early_stopping``) or else the training loss has not improved by
        ``tol`` for more than ``n_iter_no_change`` epochs, down to 1e-6, and
        with early stopping a phase stops only once it is that low;
        ``"cosine"`` lowers it along half a cosine from
        ``learning_rate_init`` toward 0 over the phase's epochs. Every phase
        starts again at ``learning_rate_init``, and :meth:`partial_fit`
        trains at ``learning_rate_init``. A float is the initial step size
        under its old name: deprecated (a ``FutureWarning``), use
        ``learning_rate_init``.

    learning_rate_init : float, default=1e-3
        The initial step size of the optimiser, in every stage.

    power_t : float, default=0.5
        The exponent of ``learning_rate="invscaling"``.

    optimizer : {"adam", "adamw", "sgd"}, default="adam"
        The PyTorch optimiser of every phase.

    momentum : float, default=0.9
        Momentum of ``optimizer="sgd"``.

    alpha : float, default=0.0
        Strength of the L2 penalty on the weights (AdamW: the decoupled
        weight decay).

    noise : {"gaussian", "masking", "auto"} or None, default="auto"
        Corruption of each phase's input during training: denoising
        pretraining (Vincent et al., 2010), and in the supervised fine-tune
        a random masking of the inputs. Denoising is what makes pretraining
        help the prediction from few labels (see the :ref:`User Guide
        <supervised>`); None turns it off. ``"auto"``: ``"masking"`` in the
        semi-supervised recipe, else None (for a plain network, the noise
        cost accuracy).

    noise_level : float, default=0.25
        Standard deviation of the Gaussian noise, or fraction of masked
        inputs.

    dropout : float, default=0.0
        Probability of zeroing each hidden unit during training, in every
        phase; prediction never drops units.

    sparsity : float, default=0.0
        Weight of the sparsity penalty on the codes.

    sparsity_target : float, default=0.05
        Mean activation that the KL sparsity penalty aims at.

    early_stopping : bool, default=False
        Whether to hold out ``validation_fraction`` of the rows (of every
        class, and of the unlabeled rows, alike) and stop each phase when
        its validation score has not improved by ``tol`` for more than
        ``n_iter_no_change`` epochs. Unsupervised phases score minus the
        reconstruction error; the supervised ones the held-out labeled rows'
        {score}, as :class:`~sklearn.neural_network.{mlp}` does.

    validation_fraction : float, default=0.1
        Fraction of the rows held out for early stopping.

    n_iter_no_change : int, default=10
        Epochs without an improvement of at least ``tol`` before a phase
        stops, with early stopping.

    tol : float, default=1e-4
        The smallest improvement that counts, with early stopping.

    precision : {"float32", "float64", "tf32", "bfloat16"}, default="float32"
        Arithmetic of training: float32 (the fast path), float64 throughout
        (as scikit-learn's MLP trains; slower), bfloat16 products under
        autocast, or TensorFloat-32 products on NVIDIA GPUs (see
        :class:`StackedAutoencoder`).

    device : {"auto", "cpu", "cuda"} or str or torch.device, default="auto"
        Where the network trains and predicts.

    distributed : bool, default=False
        Whether to train data-parallel across the processes of a
        ``torch.distributed`` process group.

    unlabeled_label : {unlabeled_doc}

    random_state : int, RandomState instance or None, default=None
        Seeds every random draw through a ``torch.Generator`` of the
        estimator's own.

    verbose : int, default=0
        ``1`` prints a line per epoch of every phase; ``2`` shows progress
        bars when tqdm is installed.

    warm_start : bool, default=False
        When True, :meth:`fit` continues the fitted network with the
        supervised fine-tune alone, and ``loss_curve_`` goes on.
"""

_SHARED_ATTRIBUTES_DOC = """
    resolved_params_ : dict
        The value each setting that takes ``"auto"`` had in the fit: the
        resolved value for ``"auto"``, the given one otherwise.

    network_ : torch.nn.Module
        The trained network: encoder, decoder and prediction head
        (``predict_scores``).

    device_ : torch.device
        The device the network lives on.

    pretrain_loss_curves_ : list of list of float
        For each layer, the training loss of every pretraining epoch.

    pretrain_validation_scores_ : list of list of float or None
        For each layer, the validation score of every pretraining epoch,
        with early stopping.

    unsupervised_loss_curve_ : list of float
        The reconstruction loss of every epoch of the unsupervised
        fine-tune (empty when it did not run).

    loss_curve_ : list of float
        The training loss of every epoch of the supervised fine-tune (and of
        every :meth:`partial_fit` call).

    validation_scores_ : list of float or None
        The {score} on the held-out labeled rows after every supervised
        epoch, with early stopping.

    best_validation_score_ : float or None
        The best of ``validation_scores_``, whose weights were kept.

    n_iter_ : int
        Epochs of the supervised fine-tune run so far.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`, when all are strings.
"""
