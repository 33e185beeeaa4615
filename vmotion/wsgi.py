import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vmotion.settings")
application = get_wsgi_application()
# What is loaded by now lives as long as the process: keep it out of the collector's full
# passes, which otherwise rescan all of it every few requests (a page that builds many
# objects, like the assistant's ranking of thousands of hosts, pays ~40 ms each time).
gc.freeze()
