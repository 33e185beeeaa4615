/*
 * /init of the vmotion lab guest: one static program, no busybox.
 *
 * It brings up the virtio network, serves TCP echo, and runs a memory workload that rewrites
 * a working set at a chosen rate while checking that every page still holds what it last
 * wrote.  Live migration that loses a dirty page shows up as a MISMATCH line; the host
 * timestamps the heartbeat lines on the serial console to see pauses (the guest's own
 * clock stops while it is paused).
 *
 * Settings come from /proc/cmdline (key=value, missing -> default):
 *   dirty_mb=N     working set in MiB (0)
 *   dirty_rate=N   MB/s (10^6 bytes) of pages rewritten; 0 = fill once, then only verify (0)
 *   vm_ip=A/P      address of eth0, e.g. 10.77.0.10/24; no networking without it
 *   vm_gw=A        default gateway (optional)
 *   echo_port=N    TCP echo port, 0 disables it (7)
 *   hb_ms=N        heartbeat interval in ms (100)
 *
 * Console lines (one write() each, so lines never interleave):
 *   VMOTION-GUEST READY ip=<ip or none> dirty_mb=<n> dirty_rate=<n>    (exactly once)
 *   HB seq=<n> mismatches=<m> rate_kbs=<KB/s> pages=<pages in set>     (every hb_ms)
 *   MISMATCH page=<i> expected_gen=<g> word=<w>                         (10 a second at most,
 *   MISMATCH-SUPPRESSED count=<n>                                        then this)
 *   WARN behind target_kbs=<n> achieved_kbs=<n>        (every 5 s while below 90% of dirty_rate)
 *   and informational MODULE / NET / ECHO / ERROR lines before READY.
 * Heartbeat seq starts at 1; mismatches counts corrupted pages (each corruption once).
 *
 * Build: gcc -static -O2 -Wall -o init guest_init.c  (vmotion/lab/guest_image.py does it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE_BYTES 4096
#define WORDS_PER_PAGE (PAGE_BYTES / 8)
#define TICK_NS 10000000LL            /* pacing granularity: 10 ms */
#define MAX_CREDIT_TICKS 5            /* never catch up more than 50 ms of backlog at once */
#define VERIFY_PASS_NS 5000000000LL   /* dirty_rate=0: one full verification pass per 5 s */
#define MISMATCH_LINES_PER_SEC 10
#define RESERVED_GUEST_MB 48          /* kernel + init need this much besides the working set */
#define ECHO_RESTART_NS 1000000000LL

struct settings {
    long dirty_mb;
    long dirty_rate;
    char vm_ip[64];
    char vm_gw[64];
    long echo_port;
    long hb_ms;
};

/* ---------- console output ---------- */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    char line[512];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, args);
    va_end(args);
    if (len < 0)
        return;
    if (len > (int)sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line: the tty layer keeps a single write together. */
    for (int done = 0; done < len;) {
        ssize_t n = write(STDOUT_FILENO, line + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        done += n;
    }
}

static int64_t monotonic_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

static void sleep_until_ns(int64_t deadline)
{
    struct timespec when = {.tv_sec = deadline / 1000000000LL, .tv_nsec = deadline % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &when, NULL) == EINTR)
        ;
}

/* ---------- early setup ---------- */

static void mount_or_warn(const char *source, const char *target, const char *type)
{
    mkdir(target, 0755);
    if (mount(source, target, type, 0, NULL) != 0 && errno != EBUSY)
        say("ERROR mount %s on %s: %s", type, target, strerror(errno));
}

/* The kernel opens /dev/console for us when the initramfs has that node; if it did not,
 * attach stdio to the console that devtmpfs now provides. */
static void ensure_console(void)
{
    if (fcntl(STDOUT_FILENO, F_GETFD) != -1)
        return;
    int fd = open("/dev/console", O_RDWR | O_NOCTTY);
    if (fd < 0)
        return;
    for (int target = 0; target <= 2; target++)
        if (fd != target)
            dup2(fd, target);
    if (fd > 2)
        close(fd);
}

static void copy_value(char *dest, size_t size, const char *value)
{
    snprintf(dest, size, "%s", value);
}

static void read_settings(struct settings *out)
{
    *out = (struct settings){.dirty_mb = 0, .dirty_rate = 0, .echo_port = 7, .hb_ms = 100};
    char cmdline[4096] = "";
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof cmdline - 1);
        cmdline[n > 0 ? n : 0] = '\0';
        close(fd);
    } else {
        say("ERROR open /proc/cmdline: %s (using defaults)", strerror(errno));
    }
    char *save = NULL;
    const char *separators = " \t\n";
    for (char *word = strtok_r(cmdline, separators, &save); word; word = strtok_r(NULL, separators, &save)) {
        char *eq = strchr(word, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *key = word, *value = eq + 1;
        if (!strcmp(key, "dirty_mb"))
            out->dirty_mb = atol(value);
        else if (!strcmp(key, "dirty_rate"))
            out->dirty_rate = atol(value);
        else if (!strcmp(key, "vm_ip"))
            copy_value(out->vm_ip, sizeof out->vm_ip, value);
        else if (!strcmp(key, "vm_gw"))
            copy_value(out->vm_gw, sizeof out->vm_gw, value);
        else if (!strcmp(key, "echo_port"))
            out->echo_port = atol(value);
        else if (!strcmp(key, "hb_ms"))
            out->hb_ms = atol(value);
    }
    if (out->dirty_mb < 0)
        out->dirty_mb = 0;
    if (out->dirty_rate < 0)
        out->dirty_rate = 0;
    if (out->hb_ms < 1)
        out->hb_ms = 100;
    if (out->echo_port < 0 || out->echo_port > 65535)
        out->echo_port = 7;
}

/* ---------- kernel modules ---------- */

/* Used only when the image builder did not write /lib/modules/load-order. */
static const char *const default_module_order[] = {
    "virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
    "virtio_blk", "failover", "net_failover", "virtio_net", NULL,
};

static void load_module(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/lib/modules/%s.ko", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        say("MODULE %s not in initramfs (built in?): %s", name, strerror(errno));
        return;
    }
    if (syscall(SYS_finit_module, fd, "", 0) == 0)
        say("MODULE %s loaded", name);
    else if (errno == EEXIST)
        say("MODULE %s already loaded", name);
    else
        say("MODULE %s failed: %s", name, strerror(errno));
    close(fd);
}

static void load_modules(void)
{
    char order[2048];
    int fd = open("/lib/modules/load-order", O_RDONLY);
    if (fd < 0) {
        for (int i = 0; default_module_order[i]; i++)
            load_module(default_module_order[i]);
        return;
    }
    ssize_t n = read(fd, order, sizeof order - 1);
    close(fd);
    order[n > 0 ? n : 0] = '\0';
    char *save = NULL;
    for (char *name = strtok_r(order, " \t\n", &save); name; name = strtok_r(NULL, " \t\n", &save))
        load_module(name);
}

/* ---------- networking ---------- */

static int parse_address(const char *text, struct in_addr *address, int *prefix)
{
    char copy[64];
    copy_value(copy, sizeof copy, text);
    *prefix = 32;
    char *slash = strchr(copy, '/');
    if (slash) {
        *slash = '\0';
        *prefix = atoi(slash + 1);
        if (*prefix < 0 || *prefix > 32)
            return -1;
    }
    return inet_pton(AF_INET, copy, address) == 1 ? 0 : -1;
}

static void set_sockaddr(struct sockaddr *target, struct in_addr address)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr = address};
    memcpy(target, &in, sizeof in);
}

static int configure_interface(int sock, const char *name, struct in_addr address, int prefix)
{
    struct ifreq request;
    memset(&request, 0, sizeof request);
    copy_value(request.ifr_name, IFNAMSIZ, name);

    set_sockaddr(&request.ifr_addr, address);
    if (ioctl(sock, SIOCSIFADDR, &request) != 0)
        return say("ERROR %s: set address: %s", name, strerror(errno)), -1;

    struct in_addr mask = {.s_addr = htonl(prefix ? 0xffffffffu << (32 - prefix) : 0)};
    set_sockaddr(&request.ifr_netmask, mask);
    if (ioctl(sock, SIOCSIFNETMASK, &request) != 0)
        return say("ERROR %s: set netmask: %s", name, strerror(errno)), -1;

    if (ioctl(sock, SIOCGIFFLAGS, &request) != 0)
        return say("ERROR %s: get flags: %s", name, strerror(errno)), -1;
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(sock, SIOCSIFFLAGS, &request) != 0)
        return say("ERROR %s: bring up: %s", name, strerror(errno)), -1;
    return 0;
}

static int add_default_route(int sock, struct in_addr gateway)
{
    struct rtentry route;
    memset(&route, 0, sizeof route);
    set_sockaddr(&route.rt_dst, (struct in_addr){.s_addr = INADDR_ANY});
    set_sockaddr(&route.rt_genmask, (struct in_addr){.s_addr = INADDR_ANY});
    set_sockaddr(&route.rt_gateway, gateway);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(sock, SIOCADDRT, &route) != 0 && errno != EEXIST)
        return say("ERROR default route via %s: %s", inet_ntoa(gateway), strerror(errno)), -1;
    return 0;
}

/* virtio_net probes while its module loads, but give a slow (emulated) boot some slack. */
static int wait_for_interface(const char *name, int64_t timeout_ns)
{
    int64_t deadline = monotonic_ns() + timeout_ns;
    while (if_nametoindex(name) == 0) {
        if (monotonic_ns() > deadline)
            return -1;
        usleep(20000);
    }
    return 0;
}

static void bring_up_network(const struct settings *settings)
{
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0) {
        say("ERROR socket for network setup: %s", strerror(errno));
        return;
    }
    configure_interface(sock, "lo", (struct in_addr){.s_addr = htonl(INADDR_LOOPBACK)}, 8);

    if (settings->vm_ip[0]) {
        struct in_addr address, gateway;
        int prefix, gateway_prefix;
        if (parse_address(settings->vm_ip, &address, &prefix) != 0) {
            say("ERROR vm_ip=%s is not an IPv4 address/prefix", settings->vm_ip);
        } else if (wait_for_interface("eth0", 5000000000LL) != 0) {
            say("ERROR eth0 did not appear (is the virtio-net device there and virtio_net loaded?)");
        } else if (configure_interface(sock, "eth0", address, prefix) == 0) {
            say("NET eth0 %s", settings->vm_ip);
            if (settings->vm_gw[0]) {
                if (parse_address(settings->vm_gw, &gateway, &gateway_prefix) != 0)
                    say("ERROR vm_gw=%s is not an IPv4 address", settings->vm_gw);
                else if (add_default_route(sock, gateway) == 0)
                    say("NET default via %s", settings->vm_gw);
            }
        }
    }
    close(sock);
}

/* ---------- TCP echo service ---------- */

static void echo_connection(int client)
{
    char buffer[65536];
    for (;;) {
        ssize_t got = read(client, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (ssize_t sent = 0; sent < got;) {
            ssize_t n = write(client, buffer + sent, got - sent);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                _exit(0);
            sent += n;
        }
    }
    _exit(0);
}

static void echo_server(int port)
{
    /* Connection children are reaped by the kernel, not by us. */
    signal(SIGCHLD, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY),
    };
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0
        || listen(listener, 64) != 0) {
        say("ERROR echo server on port %d: %s", port, strerror(errno));
        _exit(1);
    }
    say("ECHO listening on 0.0.0.0:%d", port);
    for (;;) {
        int client = accept4(listener, NULL, NULL, 0);
        if (client < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                usleep(10000);   /* e.g. EMFILE: do not spin */
            continue;
        }
        setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pid_t child = fork();
        if (child == 0) {
            close(listener);
            echo_connection(client);
        }
        if (child < 0)
            say("ERROR echo fork: %s", strerror(errno));
        close(client);
    }
}

static pid_t start_echo_server(int port)
{
    pid_t child = fork();
    if (child == 0)
        echo_server(port);
    if (child < 0) {
        say("ERROR fork echo server: %s", strerror(errno));
        return 0;   /* retried like an exited server */
    }
    return child;
}

/* ---------- memory workload ---------- */

struct workload {
    uint64_t *memory;
    uint32_t *generation;       /* per page: the generation last written there */
    long pages;
    long rewrite_cursor;
    long verify_cursor;
    uint64_t mismatches;
    /* MISMATCH line rate limit */
    int64_t mismatch_window_start;
    int mismatch_lines_in_window;
    uint64_t mismatch_lines_suppressed;
};

/* Distinct for every (page, generation, word), never zero across a page, so a page that was
 * lost (zero), stale (older generation) or moved (another page's data) all mismatch. */
static inline uint64_t page_seed(long page, uint32_t generation)
{
    uint64_t seed = (uint64_t)page * 0x9E3779B97F4A7C15ULL;
    seed ^= (uint64_t)generation * 0xC2B2AE3D27D4EB4FULL;
    return seed ^ 0x5851F42D4C957F2DULL;
}

#define WORD_STEP 0xD6E8FEB86659FD93ULL

static void write_page(struct workload *work, long page, uint32_t generation)
{
    uint64_t *words = work->memory + (size_t)page * WORDS_PER_PAGE;
    uint64_t value = page_seed(page, generation);
    for (int w = 0; w < WORDS_PER_PAGE; w++, value += WORD_STEP)
        words[w] = value;
    work->generation[page] = generation;
}

/* Opens a new one-second window for MISMATCH lines once the current one is over. */
static void roll_mismatch_window(struct workload *work, int64_t now)
{
    if (now - work->mismatch_window_start < 1000000000LL)
        return;
    if (work->mismatch_lines_suppressed)
        say("MISMATCH-SUPPRESSED count=%llu", (unsigned long long)work->mismatch_lines_suppressed);
    work->mismatch_window_start = now;
    work->mismatch_lines_in_window = 0;
    work->mismatch_lines_suppressed = 0;
}

static void report_mismatch(struct workload *work, long page, int word)
{
    work->mismatches++;
    roll_mismatch_window(work, monotonic_ns());
    if (work->mismatch_lines_in_window++ < MISMATCH_LINES_PER_SEC)
        say("MISMATCH page=%ld expected_gen=%u word=%d", page, work->generation[page], word);
    else
        work->mismatch_lines_suppressed++;
}

/* Returns 1 if the page holds exactly what was last written there. */
static int verify_page(struct workload *work, long page)
{
    const uint64_t *words = work->memory + (size_t)page * WORDS_PER_PAGE;
    uint64_t value = page_seed(page, work->generation[page]);
    for (int w = 0; w < WORDS_PER_PAGE; w++, value += WORD_STEP) {
        if (words[w] != value) {
            report_mismatch(work, page, w);
            return 0;
        }
    }
    return 1;
}

static void rewrite_next_page(struct workload *work)
{
    long page = work->rewrite_cursor;
    verify_page(work, page);
    write_page(work, page, work->generation[page] + 1);
    work->rewrite_cursor = (page + 1) % work->pages;
}

static void verify_next_page(struct workload *work)
{
    long page = work->verify_cursor;
    if (!verify_page(work, page))
        write_page(work, page, work->generation[page]);   /* repair: count each corruption once */
    work->verify_cursor = (page + 1) % work->pages;
}

/* Keeps the working set inside guest RAM: an OOM kill of PID 1 would panic the guest. */
static long affordable_dirty_mb(long wanted_mb)
{
    struct sysinfo info;
    if (wanted_mb == 0 || sysinfo(&info) != 0)
        return wanted_mb;
    long total_mb = (long)((uint64_t)info.totalram * info.mem_unit >> 20);
    long limit_mb = total_mb - RESERVED_GUEST_MB;
    if (limit_mb < 0)
        limit_mb = 0;
    if (wanted_mb <= limit_mb)
        return wanted_mb;
    say("ERROR dirty_mb=%ld does not fit in %ld MiB of guest RAM: using dirty_mb=%ld",
        wanted_mb, total_mb, limit_mb);
    return limit_mb;
}

static long allocate_workload(struct workload *work, long dirty_mb)
{
    memset(work, 0, sizeof *work);
    if (dirty_mb == 0)
        return 0;
    long pages = dirty_mb * (1024 * 1024 / PAGE_BYTES);
    size_t bytes = (size_t)pages * PAGE_BYTES;
    void *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t *generation = calloc(pages, sizeof *generation);
    if (memory == MAP_FAILED || !generation) {
        say("ERROR allocating %ld MiB working set: %s", dirty_mb, strerror(errno));
        if (memory != MAP_FAILED)
            munmap(memory, bytes);
        free(generation);
        return 0;
    }
    /* A later fork (echo server restart) must not share these pages copy-on-write. */
    madvise(memory, bytes, MADV_DONTFORK);
    work->memory = memory;
    work->generation = generation;
    work->pages = pages;
    for (long page = 0; page < pages; page++)
        write_page(work, page, 1);
    return dirty_mb;
}

/* ---------- main loop ---------- */

/* Spends a rate as pages per elapsed time, so a late tick does a bigger batch, but the
 * backlog is capped: after falling behind (or a pause) the workload does not burst. */
struct pacing {
    double pages_per_ns;
    double credit_pages;
    double max_credit_pages;
    int64_t last_ns;
};

static struct pacing start_pacing(double pages_per_ns, int64_t tick_ns, int64_t now)
{
    return (struct pacing){
        .pages_per_ns = pages_per_ns,
        .max_credit_pages = pages_per_ns * tick_ns * MAX_CREDIT_TICKS + 1,
        .last_ns = now,
    };
}

static void add_credit(struct pacing *pace, int64_t now)
{
    pace->credit_pages += pace->pages_per_ns * (double)(now - pace->last_ns);
    if (pace->credit_pages > pace->max_credit_pages)
        pace->credit_pages = pace->max_credit_pages;
    pace->last_ns = now;
}

struct guest {
    struct settings settings;
    struct workload work;
    long dirty_rate;               /* effective: 0 without a working set */
    struct pacing rewrite, verify;
    int64_t hb_ns, tick_ns, next_tick;
    uint64_t hb_seq;
    int64_t last_hb, next_hb;
    uint64_t rewritten_since_hb;
    int64_t last_rate_check;
    uint64_t rewritten_since_rate_check;
    pid_t echo_pid;                /* 0 while no echo server runs */
    int64_t echo_restart_at;
};

static uint64_t kbytes_per_sec(uint64_t pages, int64_t elapsed_ns)
{
    if (elapsed_ns <= 0)
        return 0;
    return (uint64_t)((double)pages * PAGE_BYTES / 1000.0 * 1e9 / (double)elapsed_ns);
}

static void rewrite_due_pages(struct guest *guest, int64_t now)
{
    add_credit(&guest->rewrite, now);
    while (guest->rewrite.credit_pages >= 1.0) {
        rewrite_next_page(&guest->work);
        guest->rewrite.credit_pages -= 1.0;
        guest->rewritten_since_hb++;
        /* A slow (emulated) CPU must not delay the heartbeat behind a long batch. */
        if ((guest->rewritten_since_hb & 63) == 0 && monotonic_ns() >= guest->next_hb)
            break;
    }
}

static void verify_due_pages(struct guest *guest, int64_t now)
{
    add_credit(&guest->verify, now);
    for (; guest->verify.credit_pages >= 1.0; guest->verify.credit_pages -= 1.0)
        verify_next_page(&guest->work);
}

static void heartbeat_if_due(struct guest *guest, int64_t now)
{
    if (now < guest->next_hb)
        return;
    uint64_t rate_kbs = kbytes_per_sec(guest->rewritten_since_hb, now - guest->last_hb);
    say("HB seq=%llu mismatches=%llu rate_kbs=%llu pages=%ld", (unsigned long long)++guest->hb_seq,
        (unsigned long long)guest->work.mismatches, (unsigned long long)rate_kbs, guest->work.pages);
    roll_mismatch_window(&guest->work, now);
    guest->rewritten_since_rate_check += guest->rewritten_since_hb;
    guest->rewritten_since_hb = 0;
    guest->last_hb = now;
    guest->next_hb += guest->hb_ns;
    if (guest->next_hb <= now)     /* fell behind (or was paused): no burst of heartbeats */
        guest->next_hb = now + guest->hb_ns;
}

static void warn_if_behind(struct guest *guest, int64_t now)
{
    if (guest->dirty_rate == 0 || now - guest->last_rate_check < 5000000000LL)
        return;
    uint64_t target_kbs = (uint64_t)guest->dirty_rate * 1000;
    uint64_t achieved_kbs = kbytes_per_sec(guest->rewritten_since_rate_check, now - guest->last_rate_check);
    if (achieved_kbs < target_kbs * 9 / 10)
        say("WARN behind target_kbs=%llu achieved_kbs=%llu", (unsigned long long)target_kbs,
            (unsigned long long)achieved_kbs);
    guest->rewritten_since_rate_check = 0;
    guest->last_rate_check = now;
}

/* PID 1 adopts every orphan: reap them all, and bring the echo server back if it died. */
static void tend_children(struct guest *guest, int64_t now)
{
    int status;
    pid_t child;
    while ((child = waitpid(-1, &status, WNOHANG)) > 0) {
        if (child == guest->echo_pid) {
            say("ERROR echo server exited (status %d); restarting", status);
            guest->echo_pid = 0;
        }
    }
    if (guest->settings.echo_port == 0 || guest->echo_pid != 0)
        return;
    if (guest->echo_restart_at == 0) {
        guest->echo_restart_at = now + ECHO_RESTART_NS;
    } else if (now >= guest->echo_restart_at) {
        guest->echo_pid = start_echo_server(guest->settings.echo_port);
        guest->echo_restart_at = 0;
    }
}

static void sleep_until_next_tick(struct guest *guest, int64_t now)
{
    guest->next_tick += guest->tick_ns;
    if (guest->next_tick <= now)
        guest->next_tick = now + guest->tick_ns;
    if (guest->next_tick > guest->next_hb)
        guest->next_tick = guest->next_hb;
    sleep_until_ns(guest->next_tick);
}

static void announce_ready(const struct guest *guest, long dirty_mb)
{
    char ip_text[64];
    copy_value(ip_text, sizeof ip_text, guest->settings.vm_ip[0] ? guest->settings.vm_ip : "none");
    char *slash = strchr(ip_text, '/');
    if (slash)
        *slash = '\0';
    say("VMOTION-GUEST READY ip=%s dirty_mb=%ld dirty_rate=%ld", ip_text, dirty_mb, guest->dirty_rate);
}

static void start_schedule(struct guest *guest)
{
    int64_t now = monotonic_ns();
    guest->hb_ns = guest->settings.hb_ms * 1000000LL;
    guest->tick_ns = guest->hb_ns < TICK_NS ? guest->hb_ns : TICK_NS;
    double rewrite_pages_per_ns = guest->dirty_rate * 1e6 / PAGE_BYTES / 1e9;
    guest->rewrite = start_pacing(rewrite_pages_per_ns, guest->tick_ns, now);
    guest->verify = start_pacing((double)guest->work.pages / VERIFY_PASS_NS, guest->tick_ns, now);
    guest->last_hb = guest->last_rate_check = now;
    guest->next_hb = now + guest->hb_ns;
    guest->next_tick = now + guest->tick_ns;
}

int main(void)
{
    mount_or_warn("devtmpfs", "/dev", "devtmpfs");
    ensure_console();
    mount_or_warn("proc", "/proc", "proc");
    mount_or_warn("sysfs", "/sys", "sysfs");

    static struct guest guest;
    read_settings(&guest.settings);
    load_modules();
    bring_up_network(&guest.settings);
    /* Forked before the working set exists, so it never shares those pages. */
    if (guest.settings.echo_port)
        guest.echo_pid = start_echo_server(guest.settings.echo_port);

    long dirty_mb = allocate_workload(&guest.work, affordable_dirty_mb(guest.settings.dirty_mb));
    guest.dirty_rate = guest.work.pages ? guest.settings.dirty_rate : 0;
    announce_ready(&guest, dirty_mb);
    start_schedule(&guest);

    for (;;) {   /* PID 1 never returns: the kernel would panic */
        int64_t now = monotonic_ns();
        if (guest.dirty_rate > 0)
            rewrite_due_pages(&guest, now);
        else if (guest.work.pages)
            verify_due_pages(&guest, now);
        now = monotonic_ns();
        heartbeat_if_due(&guest, now);
        warn_if_behind(&guest, now);
        tend_children(&guest, now);
        sleep_until_next_tick(&guest, now);
    }
}
