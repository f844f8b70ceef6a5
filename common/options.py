"""The options of the command-line tools (``common.train``, ``common.evaluate``), one table
per tool: the ``argparse`` parser, the ``--help`` text and the keys of a YAML config file
are all made from it.

An ``Option`` is one setting: ``--crop-size 512`` on the command line, ``crop_size: 512``
(or ``crop-size``) in a config file. ``resolve`` merges the defaults, the config file
(``--config``) and the command line, in that order (the command line wins), converting
and checking each value with the option's own converter; an error names the flag or the
file and key, and what was expected. It also returns which names the user set, so a
resumed run can tell a changed setting from a default.

The dataset options shared by the tools (``DATA_OPTIONS``) and ``open_split`` (the
dataset of one split from the settings) are here too.
"""
from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .layouts import FIXED_CLASSES, LAYOUTS
from .runtime import has_gpu


class OptionError(ValueError):
    """A setting the tool cannot use; the message names the option and what was expected."""


@dataclass(frozen=True)
class Option:
    """One setting of a command-line tool.

    Args:
        name: the key (``crop_size``); the flag is ``--crop-size``.
        default: used when neither the config file nor the command line sets it.
        help: one or two sentences for ``--help`` (the default is appended).
        convert: ``f(value) -> value`` for a command-line string or a YAML value; raises
            ``ValueError`` / ``TypeError`` with what was expected.
        choices: the allowed values (shown in ``--help``).
        group: the ``--help`` section.
        metavar: placeholder in ``--help``.
        flag: a switch (``--resume``): no value on the command line, true/false in a file.
        many: takes several words on the command line (``--model-args a=1 b=2``).
        in_file: may be set in a config file (the switches of one invocation may not).
    """

    name: str
    default: Any
    help: str
    convert: Optional[Callable] = None
    choices: tuple = ()
    group: str = "options"
    metavar: Optional[str] = None
    flag: bool = False
    many: bool = False
    in_file: bool = True

    @property
    def flag_name(self):
        return "--" + self.name.replace("_", "-")


# ------------------------------------------------------------------ converters
# Each takes a command-line string or the value a YAML file gives (int, float, list, dict).
def positive_int(v):
    """An int >= 1."""
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"expected a whole number, got {v!r}")
    n = int(v)
    if n < 1:
        raise ValueError(f"expected a whole number >= 1, got {v!r}")
    return n


def non_negative_int(v):
    """An int >= 0."""
    if isinstance(v, bool):
        raise ValueError(f"expected a whole number, got {v!r}")
    n = int(v)
    if n < 0 or n != float(v):
        raise ValueError(f"expected a whole number >= 0, got {v!r}")
    return n


def positive_float(v):
    """A float > 0."""
    x = float(v)
    if not x > 0:
        raise ValueError(f"expected a number > 0, got {v!r}")
    return x


def non_negative_float(v):
    """A float >= 0."""
    x = float(v)
    if not x >= 0:
        raise ValueError(f"expected a number >= 0, got {v!r}")
    return x


def _numbers(v, kind):
    if isinstance(v, str):
        parts = [p for p in v.replace("x", ",").split(",") if p.strip()]
    elif isinstance(v, (list, tuple)):
        parts = list(v)
    else:
        parts = [v]
    return [kind(p) for p in parts]


def size_hw(v):
    """``512`` (square) or ``512,1024`` / ``512x1024`` / ``[512, 1024]`` (height, width) -> (h, w)."""
    sizes = _numbers(v, positive_int)
    if len(sizes) not in (1, 2):
        raise ValueError(f"expected a size N or HEIGHT,WIDTH, got {v!r}")
    return (sizes[0], sizes[-1])


def scale_range(v):
    """``0.5,2.0`` -> (0.5, 2.0), 0 < min <= max."""
    lo_hi = _numbers(v, positive_float)
    if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
        raise ValueError(f"expected MIN,MAX with 0 < MIN <= MAX, got {v!r}")
    return tuple(lo_hi)


def scale_list(v):
    """``0.75,1,1.25`` -> (0.75, 1.0, 1.25), each > 0."""
    return tuple(_numbers(v, positive_float))


def name_list(v):
    """``road,car,sky`` or a YAML list -> ('road', 'car', 'sky')."""
    names = v.split(",") if isinstance(v, str) else list(v)
    names = [str(n).strip() for n in names]
    if not all(names):
        raise ValueError(f"expected comma-separated names, got an empty name in {v!r}")
    return tuple(names)


def key_values(v):
    """``["depth=50", "backbone=resnet"]`` or a YAML mapping -> {"depth": 50, "backbone": "resnet"}
    (each value read as YAML: numbers, true/false, [lists])."""
    import yaml

    if isinstance(v, dict):
        return dict(v)
    out = {}
    for item in ([v] if isinstance(v, str) else v):
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value) if value.strip() else None
    return out


def choice_of(*choices):
    """A converter accepting exactly one of ``choices`` (strings)."""
    def convert(v):
        if isinstance(v, bool):             # YAML reads on/off/yes/no as booleans
            v = "on" if v else "off"
        v = str(v).lower()
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {v!r}")
        return v
    return convert


def _convert(option, value, where):
    if value is None:
        return None
    try:
        if option.flag:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        return option.convert(value) if option.convert else value
    except (ValueError, TypeError) as err:
        raise OptionError(f"{where}: {err}") from None


# -------------------------------------------------------------------- parser
def _show(v):
    if isinstance(v, tuple):
        return ",".join(map(str, v))
    if isinstance(v, dict):
        return " ".join(f"{k}={x}" for k, x in v.items()) or "none"
    return str(v)


def build_parser(prog, description, options, epilog=None):
    """The ``argparse`` parser of ``options`` (plus ``--config``), sections by ``group``.

    Every default is ``argparse.SUPPRESS``: the parsed namespace holds only what the user
    typed, and ``resolve`` fills in the rest.
    """
    p = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog,
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False, argument_default=argparse.SUPPRESS)
    groups = {}
    for o in options:
        g = groups.get(o.group) or groups.setdefault(o.group, p.add_argument_group(o.group))
        unset = o.default is None or o.default is False or o.default in ((), {})
        text = o.help if unset else f"{o.help} (default: {_show(o.default)})"
        text = text.replace("%", "%%")
        if o.flag:
            g.add_argument(o.flag_name, dest=o.name, action="store_true", help=text)
        else:
            g.add_argument(o.flag_name, dest=o.name, help=text, metavar=o.metavar,
                           choices=o.choices or None, nargs="+" if o.many else None)
    p.add_argument("--config", metavar="FILE.yaml",
                   help="a YAML file of settings: the keys are the option names above "
                        "(crop_size: 512); the command line wins over the file")
    return p


def load_config(path, options):
    """The settings of a YAML config file, converted; unknown keys raise with the names
    they might have meant."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise OptionError(f"--config: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise OptionError(f"--config {path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise OptionError(f"--config {path}: expected 'key: value' lines, got a {type(data).__name__}")
    table = {o.name: o for o in options if o.in_file}
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in table:
            near = difflib.get_close_matches(name, table, n=3)
            raise OptionError(f"--config {path}: unknown key {key!r}"
                              + (f" (did you mean {', '.join(near)}?)" if near else
                                 f"; the keys are the option names: {', '.join(table)}"))
        out[name] = _convert(table[name], value, f"--config {path}: {key}")
    return out


def resolve(parser, options, argv=None):
    """Defaults < config file < command line.

    Returns:
        ``(settings, given)``: a dict of every option's value, and the set of names set in
        the config file or on the command line.
    """
    typed = vars(parser.parse_args(argv))
    config = typed.pop("config", None)
    given = load_config(config, options) if config else {}
    table = {o.name: o for o in options}
    for name, value in typed.items():
        given[name] = _convert(table[name], value, table[name].flag_name)
    settings = {o.name: o.default for o in options}
    settings.update(given)
    return settings, set(given)


def config_text(settings, options, header=""):
    """The settings as a YAML config file (only the keys a file may hold), in table order."""
    import yaml

    def plain(v):
        return list(v) if isinstance(v, tuple) else v

    keys = {o.name: plain(settings[o.name]) for o in options if o.in_file}
    return header + yaml.safe_dump(keys, sort_keys=False, allow_unicode=True)


# ------------------------------------------------------------- shared options
DATA_OPTIONS = [
    Option("dataset", "folder", "the kind of dataset under --root: "
           + "; ".join(f"{k}: {v}" for k, v in LAYOUTS.items()),
           choice_of(*LAYOUTS), tuple(LAYOUTS), "data"),
    Option("root", None, "the dataset folder (required)", str, group="data", metavar="DIR"),
    Option("num_classes", None, "number of classes K, the label values 0..K-1 (required for "
           "folder and filelist; voc has 21, cityscapes 19, coco-panoptic 133)", positive_int,
           group="data", metavar="K"),
    Option("class_names", None, "names of the K classes, comma-separated (folder and filelist; "
           "default 0,1,2,...)", name_list, group="data", metavar="A,B,..."),
    Option("ignore_index", 255, "label value of unlabelled pixels, neither trained nor scored "
           "(folder and filelist)", non_negative_int, group="data", metavar="V"),
]

DEVICE_OPTION = Option("device", "auto", "where to run: auto = a GPU when Paddle has CUDA and "
                       "sees one, else the CPU", choice_of("auto", "cpu", "gpu"),
                       ("auto", "cpu", "gpu"))


def open_split(settings, split, transform=None):
    """The dataset of ``split`` from the settings of ``DATA_OPTIONS``; errors name the
    options (``--dataset``, ``--root``, ``--num-classes``) and the layout expected."""
    if not settings.get("root"):
        raise OptionError("--root is required: the dataset folder")
    if settings["dataset"] not in FIXED_CLASSES and settings["num_classes"] is None:
        raise OptionError(f"--num-classes is required for --dataset {settings['dataset']}: the number "
                          "of classes, whose label values are 0..K-1")
    from .data.catalog import open_dataset  # Paddle and OpenCV: --help first

    try:
        return open_dataset(settings["dataset"], settings["root"], split, settings["num_classes"],
                            settings["class_names"], settings["ignore_index"], transform)
    except (FileNotFoundError, ValueError) as err:
        raise OptionError(f"--dataset {settings['dataset']} --root {settings['root']}: {err}") from None


def select_device(choice="auto"):
    """Set Paddle's device: ``"auto"`` (GPU when Paddle has CUDA and sees one), ``"cpu"`` or
    ``"gpu"`` (under ``paddle.distributed.launch``, the process's own GPU). Returns it."""
    import paddle  # the library's own setting of the device

    device = ("gpu" if has_gpu() else "cpu") if choice == "auto" else choice
    paddle.set_device(device)
    return device


def sliding_window(window, stride, names=("--window", "--stride")):
    """``(window, stride)`` for ``common.inference`` from the two options (the stride
    defaults to 2/3 of the window), or None without a window; ``names`` are the flags
    named in errors."""
    if window is None:
        if stride is not None:
            raise OptionError(f"{names[1]} needs {names[0]}")
        return None
    stride = stride or tuple(max(1, 2 * w // 3) for w in window)
    if any(a > b for a, b in zip(stride, window)):
        raise OptionError(f"{names[1]} {','.join(map(str, stride))} is larger than {names[0]} "
                          f"{','.join(map(str, window))}: pixels between two windows would get no prediction")
    return tuple(window), tuple(stride)


def run_cli(main, prog, argv=None):
    """Run a tool's ``main(argv)``; an error (a setting, a file) is one line on stderr and
    exit status 2, without a traceback."""
    import sys

    try:
        return main(argv)
    except (ValueError, OSError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
