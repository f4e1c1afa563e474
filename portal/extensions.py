"""Flask extensions, created unbound and attached in ``create_app`` via ``init_app``."""

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
#: Limits apply per client address; storage is Redis (set in create_app), so
#: every portal process counts together.
limiter = Limiter(key_func=get_remote_address, default_limits=[])
