"""The shape of the code, checked: one door to libvirt, no import cycles, and nothing of the
test lab in the product. The import graph comes from grimp, which also sees imports made
inside functions."""

import grimp
import pytest

PRODUCT = ("vmotion", "core", "hypervisor", "inventory", "migrations_app", "api")
SUPPORT = ("lab", "devsupport", "tests", "bench")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    # No cache: several checkouts edited at once can leave it describing files as they were.
    return grimp.build_graph(*PRODUCT, "lab", "devsupport", "tests", include_external_packages=True, cache_dir=None)


def import_cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module) & modules:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return cycles


def product_modules(graph: grimp.ImportGraph) -> set[str]:
    return {module for module in graph.modules if module.split(".")[0] in PRODUCT}


def test_only_the_hypervisor_package_imports_libvirt(graph):
    # Tests may build fakes from libvirt's constants; the product reaches libvirt only there.
    importers = product_modules(graph) & graph.find_modules_that_directly_import("libvirt")

    assert importers and {module.split(".")[0] for module in importers} == {"hypervisor"}


def test_no_module_of_the_product_takes_part_in_an_import_cycle(graph):
    assert import_cycles(graph, product_modules(graph)) == []


def test_the_product_never_imports_the_lab_the_tests_or_the_benchmark(graph):
    reaching = {
        (importer, imported)
        for importer in product_modules(graph)
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] in SUPPORT
    }
    assert reaching == set()


def test_core_imports_no_app(graph):
    # The apps build on core and register with it (periodic work: core.scheduler); core never
    # reaches up into them.
    apps = {"inventory", "migrations_app", "api", "hypervisor"}
    core_modules = {module for module in graph.modules if module.split(".")[0] == "core"}
    reaching = {
        (importer, imported)
        for importer in core_modules
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] in apps
    }

    assert "core.management.commands.scheduler" in core_modules
    assert reaching == set()


def test_the_engine_knows_nothing_of_the_queue(graph):
    imported = {module.split(".")[0] for module in graph.find_upstream_modules("migrations_app.engine.run")}

    assert not {"rq", "django_rq"} & imported
    assert "migrations_app.engine.jobs" not in graph.find_upstream_modules("migrations_app.engine.run")


def test_only_the_metrics_modules_import_prometheus_client_and_the_engine_knows_nothing_of_them(graph):
    importers = graph.find_modules_that_directly_import("prometheus_client") & product_modules(graph)

    assert importers == {"core.metric_files", "migrations_app.metrics.recording", "migrations_app.metrics.collector", "migrations_app.metrics.views"}
    upstream = graph.find_upstream_modules("migrations_app.engine.run")
    assert "prometheus_client" not in upstream and not {module for module in upstream if "metric" in module}


def test_the_lab_needs_no_django(graph):
    lab_modules = {module for module in graph.modules if module.split(".")[0] == "lab"}
    imported = {module.split(".")[0] for lab_module in lab_modules for module in graph.find_modules_directly_imported_by(lab_module)}

    assert "django" not in imported and not imported & set(PRODUCT)


def web_modules(graph: grimp.ImportGraph) -> set[str]:
    """What a web request runs: views, API views, template tags, the admin, the URL
    configurations that import them, and what the web server loads as it starts."""
    def serves_the_web(module: str) -> bool:
        last = module.rsplit(".", 1)[-1]
        return (
            last.endswith("views") or last in ("wizard", "admin", "admin_site", "urls", "forms", "token_views")
            or last in ("wsgi", "asgi", "apps", "signals", "context_processors")
            or module.startswith("api.views") or ".templatetags." in module
        )

    return {module for module in product_modules(graph) if serves_the_web(module)}


def test_no_module_serving_the_web_reaches_the_hypervisors_connection_code(graph):
    # Only workers and the scheduler hold hypervisor credentials; pages read what they measured.
    reaching = {
        module: graph.find_shortest_chain(importer=module, imported="hypervisor.connection")
        for module in sorted(web_modules(graph))
        if graph.chain_exists(importer=module, imported="hypervisor.connection")
    }

    assert {"inventory.views", "migrations_app.web.wizard", "api.views.tasks", "vmotion.urls", "vmotion.wsgi"} <= web_modules(graph)
    assert reaching == {}
