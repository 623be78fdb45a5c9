"""Test generators: the model registry and the API provider list in, thin pytest files out.

* `engine` renders one file per (model, task) or API from jinja2 templates (``templates/``),
  prefixes a generated-by line and a checksum, and writes without ever clobbering: new files are
  written, identical ones left alone, outdated ones replaced only with ``force``, hand-edited or
  hand-written ones only with ``overwrite_edited``;
* `status` builds ``test_implementation_status.json`` from the registry, the files on disk and the
  committed run results;
* `cli` is ``ipfs-accelerate generate`` and the ``test/generate_*.py`` wrappers;
* `names` rejects malformed or hostile names before anything is looked up or written.

Nothing here imports torch, transformers or httpx: generating the whole registry takes well under
a second (``bench/bench_generate.py``).
"""

from .engine import Target, api_target, model_target, write_targets
from .names import InvalidNameError, check_name

__all__ = ["InvalidNameError", "Target", "api_target", "check_name", "model_target", "write_targets"]
