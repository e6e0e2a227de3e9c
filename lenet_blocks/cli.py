"""`lenet-blocks` (and `python -m lenet_blocks`): train, evaluate, predict, tune, export.

A thin shell over the public functions: `training.train`, `training.evaluate_model`,
`prediction.predict_files`, `search.run_search`, `export.export_model`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

# Only Keras-free modules here: `--help`, `--version` and argument errors import no TensorFlow.
from lenet_blocks import __version__, backends, console
from lenet_blocks.choices import (
    AUGMENTATIONS,
    COLOR_MODES,
    DISTRIBUTIONS,
    EXPORT_FORMATS,
    LR_SCHEDULES,
    MIXINGS,
    OPTIMIZERS,
    TUNER_KINDS,
)
from lenet_blocks.presets import list_presets

EXIT_USAGE, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130
DEBUG_ENV_VAR = "LENET_BLOCKS_DEBUG"
# Errors a user causes (bad arguments, files, data): one line and exit 2. Other failures
# (a diverging loss, a failed search or export) give one line and exit 1.
USER_ERRORS = (ValueError, OSError)
# Commands whose interrupted work the same command picks up again.
RESUMABLE_COMMANDS = ("train", "tune")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="lenet-blocks",
        description=(
            "Train, evaluate, tune, export and use LeNet models with Keras: Fashion-MNIST by "
            "default, or your own data (--dataset)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"lenet_blocks {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show tracebacks and TensorFlow's own log lines (also: {DEBUG_ENV_VAR}=1)",
    )
    add_backend_argument(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_command(commands)
    add_evaluate_command(commands)
    add_tune_command(commands)
    add_predict_command(commands)
    add_presets_command(commands)
    add_export_command(commands)
    return parser


def add_train_command(commands: argparse._SubParsersAction) -> None:
    """`train`: a preset trained, evaluated and written (`training.train`)."""
    train = commands.add_parser(
        "train",
        help="train a preset, evaluate it on the test set, write model/metrics/plots",
        description="Defaults reproduce the notebook: notebook preset, SGD lr 0.9, momentum 0, "
        "5 epochs, batch 32, 10%% validation split. Training and evaluation defaults that are "
        "not given come from the preset. Killed runs resume when started again on the same "
        "--output.",
    )
    train.add_argument("--preset", default="notebook", choices=list_presets())
    train.add_argument("--epochs", type=int, help="default: the preset's")
    train.add_argument("--batch-size", type=int, help="default: the preset's")
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--learning-rate", type=float, help="default: the preset's")
    train.add_argument(
        "--lr-schedule", choices=LR_SCHEDULES, help="default: the preset's, else constant"
    )
    add_training_recipe_arguments(train)
    train.add_argument("--momentum", type=float, default=0.0)
    train.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default="none",
        help="tf.distribute strategy: mirrored over the local GPUs (or --cpu-devices), or "
        "multi-worker from TF_CONFIG; --batch-size is the global batch (default none)",
    )
    train.add_argument(
        "--steps-per-execution",
        type=int,
        default=1,
        help="training steps per call of the compiled train function: faster on a CPU, "
        "coarser progress (default 1)",
    )
    train.add_argument(
        "--cpu-devices",
        type=int,
        default=1,
        help="split the CPU into this many logical devices (for --distribution mirrored "
        "without GPUs; default 1)",
    )
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--validation-split", type=float, default=0.1)
    train.add_argument(
        "--activation", help="hidden-layer activation (the notebook: sigmoid); default: preset's"
    )
    train.add_argument(
        "--classifier-activation",
        choices=("sigmoid", "softmax", "none"),
        help="output activation; the loss is sparse categorical cross-entropy on it "
        "(from logits with 'none'); default: the preset's",
    )
    add_dataset_arguments(train)
    add_image_folder_arguments(train)
    train.add_argument(
        "--class-names",
        metavar="NAME,NAME,...",
        type=parse_class_names,
        help="names of the classes, saved with the model (default: the data set's: Keras' "
        "names, the folder names, else the class indices)",
    )
    train.add_argument("--output", default=None, help="run directory (default: runs/PRESET)")
    train.add_argument("--tensorboard", metavar="DIR", help="write TensorBoard logs to DIR")
    train.add_argument(
        "--overwrite", action="store_true", help="discard a previous run in --output"
    )
    train.add_argument("--verbose", type=int, choices=(0, 1, 2), default=None)


def add_training_recipe_arguments(command: argparse.ArgumentParser) -> None:
    """The training recipes of `RunSettings`: augmentation, mixing, label smoothing, average."""
    command.add_argument(
        "--augmentation",
        choices=AUGMENTATIONS,
        help="training-only augmentation layers; default: the preset's, else none",
    )
    command.add_argument(
        "--horizontal-flip",
        action=argparse.BooleanOptionalAction,
        help="training-only RandomFlip('horizontal') of the images; default: the preset's, "
        "else off",
    )
    command.add_argument(
        "--random-erasing",
        type=float,
        metavar="P",
        help="probability in [0, 1] of training-only RandomErasing (cutout) per image; "
        "default: the preset's, else 0",
    )
    command.add_argument(
        "--mixing",
        choices=MIXINGS,
        help="MixUp or CutMix of the training batches (soft labels); default: the preset's, "
        "else none",
    )
    command.add_argument(
        "--label-smoothing",
        type=float,
        metavar="S",
        help="label smoothing in [0, 1) of the cross-entropy; default: the preset's, else 0",
    )
    command.add_argument(
        "--use-ema",
        action=argparse.BooleanOptionalAction,
        help="keep a moving average of the weights, which validation and the saved model "
        "use; default: the preset's, else off",
    )


def add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    """`evaluate`: a model on the test split (`training.evaluate_model`)."""
    evaluate = commands.add_parser(
        "evaluate", help="evaluate a .keras model, or a preset's shipped weights, on the test set"
    )
    evaluate.add_argument("model", nargs="?", help="a .keras file (or give --preset)")
    add_preset_arguments(evaluate)
    add_dataset_arguments(
        evaluate,
        "the test split of it (an image folder: its test/ part, "
        "else every image in it) is evaluated",
    )
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--output", help="also write the results to this JSON file")


def add_tune_command(commands: argparse._SubParsersAction) -> None:
    """`tune`: a HyperLeNet search, in one process or distributed (`tuning.run_search`)."""
    tune = commands.add_parser(
        "tune",
        help="search HyperLeNet with Keras Tuner; write the best model and a leaderboard",
        description="Random search, Bayesian optimization or Hyperband over the HyperLeNet "
        "space, centred on the notebook's configuration. Started again with the same --output, "
        "a killed search resumes: completed trials are kept, the interrupted one reruns.",
    )
    tune.add_argument("--tuner", default="random", choices=TUNER_KINDS)
    tune.add_argument("--max-trials", type=int, default=10, help="trials in total (default 10)")
    tune.add_argument(
        "--epochs", type=int, default=5, help="epochs per trial; hyperband: most per model"
    )
    tune.add_argument("--executions-per-trial", type=int, default=1)
    tune.add_argument("--seed", type=int, default=0)
    tune.add_argument("--output", default="runs/tune", help="results and tuner state folder")
    tune.add_argument("--project-name", default="lenet")
    tune.add_argument(
        "--max-params",
        type=int,
        help="parameter budget: a larger configuration is drawn again, never trained",
    )
    tune.add_argument(
        "--fixed",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="hold a hyperparameter fixed (repeatable), e.g. --fixed activation=relu",
    )
    add_dataset_arguments(tune, "an image folder is read into memory once: a search needs it there")
    add_image_folder_arguments(tune)
    tune.add_argument("--overwrite", action="store_true", help="start afresh, do not resume")
    tune.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    tune.add_argument(
        "--workers",
        type=int,
        default=0,
        help="run distributed: a chief (the oracle) and this many worker processes on this "
        "machine, supervised (default 0: one process)",
    )
    tune.add_argument(
        "--max-restarts",
        type=int,
        help="with --workers: restarts per worker after it dies (default 2)",
    )
    tune.add_argument(
        "--oracle-port", type=int, help="with --workers: the oracle's port (default: a free one)"
    )
    tune.add_argument(
        "--timeout", type=float, help="with --workers: seconds for the whole search (default none)"
    )


def add_predict_command(commands: argparse._SubParsersAction) -> None:
    """`predict`: the top classes of image files (`prediction.predict_files`)."""
    predict = commands.add_parser(
        "predict",
        help="top-k classes of images (PNG/JPEG or .npy)",
        description="`predict MODEL.keras IMAGE...`, or `predict --preset P IMAGE...` with the "
        "preset's shipped weights.",
    )
    predict.add_argument(
        "paths",
        nargs="+",
        metavar="MODEL_OR_IMAGE",
        help="a .keras file then image files (PNG, JPEG) or NumPy .npy arrays; with --preset, "
        "only images",
    )
    add_preset_arguments(predict)
    predict.add_argument("--top-k", type=int, default=3)
    predict.add_argument(
        "--invert",
        choices=("auto", "yes", "no"),
        default="auto",
        help="polarity: auto (default) inverts an image whose border is brighter than mid-grey, "
        "as for drawings given to a Fashion-MNIST model; 'no' for a model trained on images "
        "like the ones given (docs/datasets.md)",
    )


def add_presets_command(commands: argparse._SubParsersAction) -> None:
    """`presets`: the presets and their shipped weights."""
    commands.add_parser(
        "presets",
        help="list the presets, their shipped weights and recorded test accuracy",
        description="Every preset of build_lenet, with the weight sets shipped for it and the "
        "test accuracy their training run measured (docs/pretrained.md).",
    )


def add_export_command(commands: argparse._SubParsersAction) -> None:
    """`export`: a model in another format, verified (`export.export_model`)."""
    export = commands.add_parser(
        "export",
        help="export a .keras model to SavedModel, TFLite, ONNX, OpenVINO or a keras-hub "
        "preset, verified against Keras",
        description="Writes the model atomically with Keras' exporters, reloads it in its own "
        "runtime and compares it with the Keras model on the Fashion-MNIST test set: float "
        "formats by output difference, int8 by accuracy drop. The runtimes are the export "
        "extra (`pip install 'lenet_blocks[export]'`), keras-hub the hub extra. JAX exports "
        "savedmodel, onnx and keras-hub; PyTorch onnx, openvino and keras-hub (docs/deploy.md).",
    )
    export.add_argument("model", help="a .keras file")
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    export.add_argument(
        "--output",
        required=True,
        help="a directory for savedmodel, openvino and keras-hub, the output file otherwise",
    )
    export.add_argument("--force", action="store_true", help="replace an existing --output")
    export.add_argument(
        "--quantize", choices=("int8",), help="tflite: int8 post-training quantization"
    )
    export.add_argument(
        "--full-integer", action="store_true", help="int8: quantize the output op too"
    )
    export.add_argument(
        "--calibration-samples", type=int, default=300, help="int8: training images to calibrate"
    )
    export.add_argument(
        "--max-accuracy-drop", type=float, default=0.02, help="int8: 0.02 = 2 points (default)"
    )
    export.add_argument(
        "--tolerance",
        type=float,
        default=1e-5,
        help="float formats: allowed output difference, relative to max(1, max |output|), "
        "added to twice the Keras model's own float32 error (default 1e-5)",
    )
    export.add_argument("--data-dir", help="directory with the Fashion-MNIST IDX .gz files")
    export.add_argument("--report", metavar="JSON", help="also write the report to this file")


def run_train(args: argparse.Namespace) -> None:
    import dataclasses

    from lenet_blocks.distribution import configure_cpu_devices
    from lenet_blocks.settings import RunSettings
    from lenet_blocks.training import train

    configure_cpu_devices(args.cpu_devices)

    overrides = {}
    if args.activation is not None:
        overrides["activation"] = args.activation
    if args.classifier_activation is not None:
        activation = args.classifier_activation
        overrides["classifier_activation"] = None if activation == "none" else activation
    # The flags are named as RunSettings' fields: the settings are declared once, there.
    fields = {field.name for field in dataclasses.fields(RunSettings)} - {"model_overrides"}
    settings = RunSettings(
        **{name: getattr(args, name) for name in fields}, model_overrides=overrides
    )
    metrics = train(
        args.output or f"runs/{args.preset}",
        settings,
        data_dir=args.data_dir,
        class_names=args.class_names,
        tensorboard_dir=args.tensorboard,
        overwrite=args.overwrite,
        verbose="auto" if args.verbose is None else args.verbose,
        distribution=args.distribution,
        steps_per_execution=args.steps_per_execution,
    )
    skipped = metrics.get("skipped_files", [])
    if skipped:
        print(
            f"Skipped {len(skipped)} bad files (metrics.json lists them), the first: {skipped[0]}",
            file=sys.stderr,
        )


def add_dataset_arguments(command: argparse.ArgumentParser, what: str = "") -> None:
    """`--dataset`, `--data-dir` and `--skip-bad-files` (docs/datasets.md)."""
    command.add_argument(
        "--dataset",
        default="fashion_mnist",
        metavar="NAME_OR_PATH",
        help="fashion_mnist (default), mnist, cifar10, or the path of an IDX directory, an "
        ".npz archive (x_train, y_train, x_test, y_test) or an image folder (one subfolder "
        f"per class, or train/ and test/ parts){'; ' + what if what else ''}",
    )
    command.add_argument("--data-dir", help="directory with the files of the named data set")
    command.add_argument(
        "--skip-bad-files",
        action="store_true",
        help="image folders: leave unreadable or non-PNG/JPEG files out (counted) instead of "
        "stopping",
    )


def add_image_folder_arguments(command: argparse.ArgumentParser) -> None:
    """`--image-size` and `--color-mode`: how an image folder's images are read."""
    command.add_argument(
        "--image-size",
        type=parse_image_size,
        metavar="HxW",
        help="image folders: resize every image to HxW (default: their own size, which must agree)",
    )
    command.add_argument(
        "--color-mode",
        choices=COLOR_MODES,
        help="image folders: the channels (default: grayscale when every image is)",
    )


def parse_image_size(text: str) -> tuple[int, int]:
    """`"32x32"` -> `(32, 32)` (height x width).

    Example:
    >>> parse_image_size("24x32")
    (24, 32)
    """
    height, separator, width = text.lower().partition("x")
    if not separator or not height.isdigit() or not width.isdigit():
        raise argparse.ArgumentTypeError(f"must be HxW, e.g. 32x32. Received: {text!r}")
    return int(height), int(width)


def add_preset_arguments(command: argparse.ArgumentParser) -> None:
    """`--preset` and `--weights`: a preset's trained model instead of a `.keras` file."""
    command.add_argument(
        "--preset", choices=list_presets(), help="use this preset's shipped weights, no file"
    )
    command.add_argument(
        "--weights",
        help="with --preset: 'fashion_mnist' (default) or a .weights.h5 file",
    )
    command.add_argument(
        "--class-names",
        metavar="NAME,NAME,...",
        help="names of the model's classes, comma-separated (default: the names the model "
        "carries, else Fashion-MNIST's for evaluate and the class indices for predict)",
    )


def parse_class_names(text: str | None) -> tuple[str, ...] | None:
    """`"cat,dog"` -> `("cat", "dog")`; `None` stays `None`.

    Example:
    >>> parse_class_names("cat, dog")
    ('cat', 'dog')
    """
    return None if text is None else tuple(name.strip() for name in text.split(","))


def command_model(path: str | None, args: argparse.Namespace):
    """The model a command works on: the `.keras` file at `path`, or `--preset`'s weights."""
    if args.preset is not None:
        if path is not None:
            raise ValueError(
                "Give a .keras file or `--preset`, not both. "
                f"Received: {path} and --preset {args.preset}"
            )
        from lenet_blocks.builder import build_lenet

        return build_lenet(args.preset, weights=args.weights or "fashion_mnist")
    if args.weights is not None:
        raise ValueError(f"`--weights` applies with `--preset`. Received: --weights {args.weights}")
    if path is None:
        raise ValueError("A .keras model file or `--preset` is needed. Received: neither")
    from lenet_blocks.saving import load_model

    return load_model(path, compile=False)


def run_presets(args: argparse.Namespace) -> None:
    from lenet_blocks.presets import get_preset
    from lenet_blocks.pretrained import pretrained_presets

    shipped = pretrained_presets()
    for name in list_presets():
        weights = shipped.get(name, {})
        trained = ", ".join(
            f"{key} (test accuracy {entry['test_accuracy']:.4f}, {entry['parameters']:,} "
            "parameters)"
            for key, entry in weights.items()
        )
        print(f"{name}: {get_preset(name)['description']}")
        print(f"  weights: {trained or 'none shipped'}")


def run_evaluate(args: argparse.Namespace) -> None:
    from lenet_blocks import artifacts
    from lenet_blocks.data_sources import load_test_split
    from lenet_blocks.inference import head_classes, model_class_names
    from lenet_blocks.training import evaluate_model

    model = command_model(args.model, args)
    test, names = load_test_split(
        args.dataset,
        args.data_dir,
        input_shape=model.input_shape[1:],
        classes=head_classes(model),
        class_names=parse_class_names(args.class_names) or model_class_names(model),
        batch_size=args.batch_size,
        skip_bad_files=args.skip_bad_files,
    )
    results = evaluate_model(model, *test, batch_size=args.batch_size, class_names=names)
    print(f"test loss {results['loss']:.4f}  test accuracy {results['accuracy']:.4f}")
    for name, accuracy in results["per_class_accuracy"].items():
        print(f"  {name:<12} " + ("no samples" if accuracy is None else f"{accuracy:.4f}"))
    if args.output:
        artifacts.write_json(args.output, results)


def run_predict(args: argparse.Namespace) -> None:
    from lenet_blocks.prediction import format_predictions, predict_files

    path, images = (None, args.paths) if args.preset else (args.paths[0], args.paths[1:])
    if not images:
        raise ValueError(
            f"`predict` needs image files after the model. Received: {' '.join(args.paths)}"
        )
    model = command_model(path, args)
    names = parse_class_names(args.class_names)
    invert = {"auto": "auto", "yes": True, "no": False}[args.invert]
    results = predict_files(model, images, top_k=args.top_k, class_names=names, invert=invert)
    print(format_predictions(results))


def run_tune(args: argparse.Namespace) -> None:
    search = {  # `run_search`'s arguments, the same for one process and for --workers N
        "kind": args.tuner,
        "max_trials": args.max_trials,
        "epochs": args.epochs,
        "executions_per_trial": args.executions_per_trial,
        "seed": args.seed,
        "project_name": args.project_name,
        "max_params": args.max_params,
        "fixed": parse_fixed(args.fixed),
        "dataset": args.dataset,
        "data_dir": args.data_dir,
        "image_size": args.image_size,
        "color_mode": args.color_mode,
        "skip_bad_files": args.skip_bad_files,
        "overwrite": args.overwrite,
        "verbose": args.verbose,
    }
    if args.workers:
        run_distributed_tune(args, search)
        return
    for option in ("max_restarts", "oracle_port", "timeout"):
        if getattr(args, option) is not None:
            flag = "--" + option.replace("_", "-")
            raise ValueError(f"`{flag}` only applies with `--workers N`. Received: {flag} alone")
    from lenet_blocks.tuning import run_search

    run_search(args.output, **search)


def run_distributed_tune(args: argparse.Namespace, search: dict) -> None:
    from lenet_blocks.distributed_search import run_distributed_search

    # Every process would fail on these: say so once, here, before starting any (the launcher
    # checks `search` itself: the fixed values, the data).
    checks = [
        ("--workers", args.workers, args.workers >= 1),
        ("--max-trials", args.max_trials, args.max_trials >= 1),
        ("--epochs", args.epochs, args.epochs >= 1),
        ("--max-restarts", args.max_restarts, args.max_restarts is None or args.max_restarts >= 0),
        (
            "--oracle-port",
            args.oracle_port,
            args.oracle_port is None or 0 < args.oracle_port < 65536,
        ),
        ("--timeout", args.timeout, args.timeout is None or args.timeout > 0),
    ]
    for flag, value, valid in checks:
        if not valid:
            raise ValueError(f"`{flag}` is out of range. Received: {flag} {value}")
    run_distributed_search(
        args.output,
        workers=args.workers,
        search=search,
        max_restarts=2 if args.max_restarts is None else args.max_restarts,
        port=args.oracle_port,
        timeout=args.timeout,
    )


def run_export(args: argparse.Namespace) -> None:
    from lenet_blocks import artifacts
    from lenet_blocks.datasets import load_fashion_mnist
    from lenet_blocks.export import export_model, format_report

    (x_train, _), test = load_fashion_mnist(args.data_dir)
    report = export_model(
        args.model,
        args.output,
        args.format,
        quantize=args.quantize,
        full_integer=args.full_integer,
        force=args.force,
        calibration_images=x_train,
        evaluation_data=test,
        calibration_samples=args.calibration_samples,
        max_accuracy_drop=args.max_accuracy_drop,
        tolerance=args.tolerance,
    )
    print(format_report(report))
    if args.report:
        artifacts.write_json(args.report, report)


def parse_fixed(pairs: Sequence[str]) -> dict:
    """`["activation=relu", "filters_1=12"]` -> `{"activation": "relu", "filters_1": 12}`.

    Values are read as JSON when they parse (numbers, `true`/`false`), else kept as strings.

    Example:
    >>> parse_fixed(["activation=relu", "filters_1=12", "batch_norm=true"])
    {'activation': 'relu', 'filters_1': 12, 'batch_norm': True}
    """
    import json

    fixed = {}
    for pair in pairs:
        name, separator, text = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"`--fixed` must be NAME=VALUE. Received: --fixed {pair!r}")
        try:
            fixed[name] = json.loads(text)
        except json.JSONDecodeError:
            fixed[name] = text
    return fixed


COMMANDS = {
    "train": run_train,
    "evaluate": run_evaluate,
    "predict": run_predict,
    "presets": run_presets,
    "tune": run_tune,
    "export": run_export,
}


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """`--backend`, which every command takes, before or after the command's name."""
    parser.add_argument(
        "--backend",
        choices=backends.BACKENDS,
        help="the Keras backend, set before Keras is imported (default: "
        f"${backends.BACKEND_ENV_VAR}, else Keras' own); also after the command's name",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (0 ok, 1 failure, 2 bad usage or input, 130 Ctrl-C).

    Errors are one line on stderr; `--debug` (or `LENET_BLOCKS_DEBUG=1`) shows the traceback
    and TensorFlow's own log lines instead. `--backend` (anywhere on the line) or
    `KERAS_BACKEND` picks the Keras backend before anything imports Keras.
    """
    backend_parser = argparse.ArgumentParser(
        prog="lenet-blocks", add_help=False, allow_abbrev=False
    )
    add_backend_argument(backend_parser)
    chosen, rest = backend_parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(rest)
    debug = args.debug or os.environ.get(DEBUG_ENV_VAR, "") not in ("", "0")
    prefix = f"lenet-blocks {args.command}"
    with contextlib.nullcontext() if debug else console.native_logs_filtered():
        try:
            backend = backends.requested_backend(chosen.backend)
            if backend is not None:
                backends.select_backend(backend)
                backends.check_tensorflow_only(args.command, vars(args), backend)
            COMMANDS[args.command](args)
        except KeyboardInterrupt:
            resumes = "; the same command resumes it" if args.command in RESUMABLE_COMMANDS else ""
            print(f"{prefix}: interrupted{resumes}.", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as error:
            if debug:
                raise
            message = console.one_line(error)
            user_error = isinstance(error, USER_ERRORS)
            if not user_error and not type(error).__module__.startswith("lenet_blocks."):
                message += f" ({type(error).__name__}; --debug shows the traceback)"
            print(f"{prefix}: error: {message}", file=sys.stderr)
            return EXIT_USAGE if user_error else EXIT_FAILURE
    return 0
