"""The pages: views, forms, the wizard, filters, read models and the progress chart. Pages never reach libvirt; they queue work by name."""
