"""Pure dialing-policy functions (no I/O, no clock): testable without a server.

The models come first: they import two of these modules at their end, and these modules
use the models, so loading the models first keeps any import order working.
"""

import campaign_engine.models  # noqa: F401
