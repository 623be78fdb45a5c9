"""Every provider's kit suite, exactly as a generated test/apis/test_<api>.py would run it."""

from ipfs_accelerate.api.providers import PROVIDER_NAMES
from ipfs_accelerate.api.testing.kit import api_tests

for _name in PROVIDER_NAMES:
    globals().update(api_tests(_name))
