"""mediaml.tasks.video.compat: PyTorchVideo 0.1.5 imports a torchvision module current torchvision renamed."""
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT

IMPORT = "import pytorchvideo.transforms, pytorchvideo.data; print('ok')"


def _py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow  # long: CI runs it with -m slow
def test_pytorchvideo_needs_the_alias_and_imports_with_it():
    bare = _py(IMPORT)
    # Without the alias current torchvision breaks PyTorchVideo's import (the reason mediaml.tasks.video.compat exists).
    # If a future torchvision ships the old name again, this documents that the alias is no longer needed.
    assert bare.returncode != 0 and "torchvision.transforms.functional_tensor" in bare.stderr, bare.stderr[-500:]
    # Video modules install it on import; a second call is a no-op.
    fixed = _py("import sys; import mediaml.tasks.video.decode; from mediaml.tasks.video.compat import install_torchvision_alias as f; "
                "assert 'torchvision.transforms.functional_tensor' in sys.modules and f() is False; " + IMPORT)
    assert fixed.returncode == 0 and fixed.stdout.strip().endswith("ok"), fixed.stderr[-2000:]
