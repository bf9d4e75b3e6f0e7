"""fastconv.models: the classic CNNs built from fastconv.nn, with torchvision's state-dict keys
where torchvision has the architecture."""
from .alexnet import *  # noqa: F401,F403
from .lenet import *  # noqa: F401,F403
from .resnet import *  # noqa: F401,F403
from .vgg import *  # noqa: F401,F403

try:
    from .inception import *  # noqa: F401,F403
except ImportError:
    pass
try:
    from .mobilenet import *  # noqa: F401,F403
except ImportError:
    pass
try:
    from .efficientnet import *  # noqa: F401,F403
except ImportError:
    pass
