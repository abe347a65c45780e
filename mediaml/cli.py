"""The command line's user errors: a mistyped key or option, or an override Hydra cannot parse, is the user's
mistake, found before any run opens. It prints one message (with the nearest valid key or option: "did you
mean ...?") and exits 2, instead of Hydra's trimmed traceback, which for an unknown key suggests `+key=...`
(adding the typo as a new key, which the run then ignores or trips over).

`HYDRA_FULL_ERROR=1` (or `python train.py --verbose ...`) keeps Hydra's own report with the full traceback.
"""
from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf"
USER_ERROR_EXIT = 2


def full_errors() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.initialized() and str(HydraConfig.get().mode).endswith("MULTIRUN")


def install() -> None:
    """Wrap Hydra's error report (hydra._internal.utils.run_and_report, hydra-core 1.3, pinned): composition
    errors of the command line are printed as ours; every other error goes to Hydra's report as before."""
    from hydra._internal import utils as hydra_utils

    original = hydra_utils.run_and_report
    if getattr(original, "_mediaml", False):
        return

    def run_and_report(func):
        try:
            return func()
        except Exception as ex:
            message = None if full_errors() else user_message(ex)
            if message is None:
                def again():
                    raise ex

                return original(again)
            print(f"error: {message}", file=sys.stderr)
            sys.exit(USER_ERROR_EXIT)

    run_and_report._mediaml = True
    hydra_utils.run_and_report = run_and_report


def user_message(ex: BaseException) -> str | None:
    """The message for a command-line mistake, None for anything else."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException

    text = str(ex).strip()
    if isinstance(ex, MissingConfigException):
        m = re.search(r"Could not find '([\w/.-]+)/([\w.-]+)'", text)
        if m:
            group, option = m.groups()
            options = sorted(p.stem for p in (CONF / group).glob("*.yaml"))
            near = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(f'{group}={o}' for o in near)}?" if near else ""
            return (f"{group}={option}: there is no conf/{group}/{option}.yaml{hint}\n"
                    f"  the {group} options: {', '.join(options)}  (python train.py --help lists them by task)")
        return text.splitlines()[0]
    if isinstance(ex, OverrideParseException):
        bad = getattr(ex, "override", None) or next((a for a in sys.argv[1:] if "=" in a and a in text), "")
        why = "; ".join(line for line in text.splitlines() if line and not line.startswith(("See ", "Error parsing")))
        return (f"cannot read the override {bad!r}: " if bad else "") + \
            f"{why}\n  overrides are key=value (a list: key=[a,b]; a sweep: -m key=a,b)"
    if isinstance(ex, ConfigCompositionException):
        m = re.search(r"Could not override '([^']+)'", text)
        cause = str(ex.__cause__ or "").strip().splitlines()
        if m and cause and "not in struct" in cause[0]:
            return unknown_key_message(m.group(1))
        first = text.splitlines()[0]
        return first + (f"\n  {cause[0]}" if cause else "")
    return None


def unknown_key_message(key: str) -> str:
    """`key` is not in the composed config: the nearest keys that are (the config composed from the command
    line without its overrides of unknown keys)."""
    keys = composed_keys(key)
    near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not near:  # a typo in the last part: compare the leaves under the same parent
        parent = key.rpartition(".")[0]
        siblings = [k for k in keys if k.rpartition(".")[0] == parent]
        near = difflib.get_close_matches(key, siblings, n=1, cutoff=0.4)
    hint = f"did you mean {near[0]}?" if near else \
        "see the config's keys with: python train.py <your overrides> --cfg job"
    return (f"{key} is not a key of this config: {hint}\n"
            f"  (to add a new key on purpose, write +{key}=...)")


def composed_keys(bad_key: str) -> list[str]:
    """Every dotted key of the config the command line composes, leaving out its overrides of `bad_key` and of
    other keys (group choices kept), so the composition succeeds."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from mediaml.config import flatten

    choices = [a for a in sys.argv[1:] if "=" in a and not a.startswith(("-", "+", "~"))
               and "." not in a.split("=", 1)[0] and "," not in a]  # group choices, not a sweep's lists
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="train", overrides=choices)
    except Exception:
        return []
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.set_struct(cfg, False)
    keys = set(flatten(OmegaConf.to_container(cfg, resolve=False)))
    # the parents too: `model.n_estimatorz` is near `model.n_estimators`, `modle.x` near `model.x`
    keys |= {k.rsplit(".", i)[0] for k in list(keys) for i in range(1, k.count(".") + 1)}
    return sorted(keys)
