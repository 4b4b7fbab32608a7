"""Extension objects, created once here so any module can import them without the factory."""
from flask_babel import Babel
from flask_bootstrap import Bootstrap5
from flask_login import LoginManager
from flask_wtf import CSRFProtect

babel = Babel()
csrf = CSRFProtect()
login_manager = LoginManager()
bootstrap = Bootstrap5()  # serves Bootstrap from our own server: exam labs are often offline
