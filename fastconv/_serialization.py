"""fastconv.save / fastconv.load: state dicts as NumPy .npz archives (one array per key)."""
import numpy as np


def save(obj, path):
    """Save a Module's state_dict (or any mapping of names to arrays) to `path`, an .npz archive
    written to exactly that path (np.load reads it too)."""
    state = obj.state_dict() if hasattr(obj, "state_dict") else dict(obj)
    with open(path, "wb") as f:
        np.savez(f, **{k: np.asarray(v) for k, v in state.items()})


def load(path):
    """Read what save() wrote: a dict of arrays, for `model.load_state_dict(fastconv.load(path))`."""
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}
