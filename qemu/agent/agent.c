/* hwpsim in-guest agent: runs case programs (qemu/PROTOCOL.md) with real syscalls and reports
 * what happened as JSON lines prefixed with "@@HWP " on stdout (the serial console).
 *
 * One controller process reads the program; every workload process is a fork of it that takes
 * commands over a pair of FIFOs (/run/hwp/<name>.cmd / .res) so that processes forked by the
 * case itself can be driven the same way. Signals, process exits and thread ids are recorded in a
 * MAP_SHARED region every process inherits. Build: gcc -static -O2 -pthread agent.c -o agent */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_HWPOISON
#define MADV_HWPOISON 100
#endif
#ifndef MADV_SOFT_OFFLINE
#define MADV_SOFT_OFFLINE 101
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif
#ifndef MAP_HUGETLB
#define MAP_HUGETLB 0x40000
#endif
#ifndef MFD_HUGETLB
#define MFD_HUGETLB 4
#endif
#define PAGE 4096UL
#define HUGE2M (2UL << 20)

/* ---------------------------------------------------------------- shared state */
#define MAXREC 4096
#define MAXPROC 64
#define MAXTHR 256
struct sigrec { int pid, tid, signo, code, lsb, fatal, probe; unsigned long addr; };
struct prec { char name[32]; int pid; int state; /* 0 free, 1 alive, 2 exited, 3 killed */ int status; };
struct trec { char proc[32]; char name[32]; int tid; };
struct shared {
  volatile int nrec;
  volatile int stop; /* spin loops stop when set */
  volatile int probing;
  struct sigrec rec[MAXREC];
  struct prec proc[MAXPROC];
  struct trec thr[MAXTHR];
  volatile int nthr;
};
static struct shared *sh;

static void out(const char *fmt, ...) {
  char buf[65536];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 2, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  (void)!write(1, "@@HWP ", 6);
  (void)!write(1, buf, n);
  /* Wait until the serial port has sent the line: write() only queues it in the tty's transmit
   * buffer, and a panic in the next step stops the machine with it unsent (panic() prints
   * through the console driver, never flushing that buffer), losing the last report. */
  (void)tcdrain(1);
}

/* A growable string for JSON. */
struct sb { char *p; size_t n, cap; };
static void sb_add(struct sb *s, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    size_t room = s->cap - s->n;
    va_start(ap, fmt);
    int k = vsnprintf(s->p ? s->p + s->n : NULL, s->p ? room : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (s->p && (size_t)k < room) { s->n += k; return; }
    s->cap = (s->cap + k + 1) * 2;
    s->p = realloc(s->p, s->cap);
  }
}
static void sb_json_str(struct sb *s, const char *str) {
  sb_add(s, "\"");
  for (const unsigned char *c = (const unsigned char *)str; *c; c++) {
    if (*c == '"' || *c == '\\') sb_add(s, "\\%c", *c);
    else if (*c < 0x20 || *c >= 0x7f) sb_add(s, "\\u%04x", *c);
    else sb_add(s, "%c", *c);
  }
  sb_add(s, "\"");
}
static void sb_free(struct sb *s) { free(s->p); s->p = NULL; s->n = s->cap = 0; }

static pid_t gettid_(void) { return (pid_t)syscall(SYS_gettid); }

/* ---------------------------------------------------------------- signals */
static __thread sigjmp_buf access_jb;
static __thread volatile int in_access;
static int sigbus_mode; /* 0 handler, 1 default (record + die), 2 ignore, 3 block */

static void record(const siginfo_t *si, int fatal) {
  int i = __atomic_fetch_add(&sh->nrec, 1, __ATOMIC_SEQ_CST);
  if (i >= MAXREC) return;
  struct sigrec *r = &sh->rec[i];
  r->pid = getpid();
  r->tid = gettid_();
  r->signo = si->si_signo;
  r->code = si->si_code;
  r->addr = (unsigned long)si->si_addr;
#ifdef si_addr_lsb
  r->lsb = si->si_addr_lsb;
#else
  r->lsb = 0;
#endif
  r->fatal = fatal;
  r->probe = sh->probing;
}

static void on_sigbus(int sig, siginfo_t *si, void *uc) {
  (void)uc;
  if (sigbus_mode == 1) {
    record(si, 1);
    signal(SIGBUS, SIG_DFL);
    raise(SIGBUS);
    return;
  }
  record(si, 0);
  if (in_access) { in_access = 0; siglongjmp(access_jb, sig); }
}

static void note_exit(pid_t pid, int st) {
  for (int i = 0; i < MAXPROC; i++) {
    if (sh->proc[i].state == 1 && sh->proc[i].pid == pid) {
      sh->proc[i].status = st;
      sh->proc[i].state = WIFSIGNALED(st) ? 3 : 2;
    }
  }
}
static void on_sigchld(int sig) {
  (void)sig;
  int e = errno, st;
  pid_t p;
  while ((p = waitpid(-1, &st, WNOHANG | __WALL)) > 0) note_exit(p, st);
  errno = e;
}

/* ---------------------------------------------------------------- small helpers */
static int write_file(const char *path, const char *val) {
  int fd = open(path, O_WRONLY);
  if (fd < 0) return -errno;
  ssize_t n = write(fd, val, strlen(val));
  int r = n < 0 ? -errno : 0;
  close(fd);
  return r;
}
static int read_file(const char *path, char *buf, size_t len) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -errno;
  ssize_t n = read(fd, buf, len - 1);
  int e = errno;
  close(fd);
  if (n < 0) return -e;
  buf[n] = 0;
  return (int)n;
}
static void msleep(int ms) {
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}
static unsigned long pattern(unsigned long seed, unsigned long page) { return (seed << 32) ^ (page * 0x9e3779b1UL) ^ 0x4857500000000000UL; }
static void fill_page(void *p, unsigned long word) {
  unsigned long *w = p;
  for (size_t i = 0; i < PAGE / sizeof *w; i++) w[i] = word + i;
}

/* ---------------------------------------------------------------- the workload side */
#define MAXMAP 64
#define MAXFILE 32
struct mapping { char name[32]; unsigned long addr, len; };
struct thread { char name[32]; int cmd[2], res[2]; pthread_t th; int policy; };
static struct mapping maps[MAXMAP];
static int nmaps;
static int fds[MAXFILE];
static char fdnames[MAXFILE][32];
static int nfds;
static struct thread threads[16];
static int nthreads;
static char myname[32];

static void set_policy(int policy) {
  if (policy == 0) prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 0);
  else if (policy == 1) prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0);
  /* An explicit "default" clears PF_MCE_PROCESS (a new thread inherits its creator's flags). */
  else if (policy == 2) prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_DEFAULT, 0, 0);
}
/* late, early, default, or inherit (no prctl: keep what the creating thread had). */
static int parse_policy(const char *s) { return !strcmp(s, "late") ? 0 : !strcmp(s, "early") ? 1 : !strcmp(s, "inherit") ? 3 : 2; }

static void register_thread(const char *name) {
  int i = __atomic_fetch_add(&sh->nthr, 1, __ATOMIC_SEQ_CST);
  if (i >= MAXTHR) return;
  snprintf(sh->thr[i].proc, sizeof sh->thr[i].proc, "%s", myname);
  snprintf(sh->thr[i].name, sizeof sh->thr[i].name, "%s", name);
  sh->thr[i].tid = gettid_();
}

static int file_fd(const char *name) {
  for (int i = 0; i < nfds; i++) if (!strcmp(fdnames[i], name)) return fds[i];
  return -1;
}

/* Not inlined: the host injects a machine check only while the vCPU's RIP is inside this loop
 * (its address travels in the `mce` event), so the #MC hits the spinner, not the controller. */
__attribute__((noinline, aligned(64))) static void spin_until_stop(void) {
  while (!sh->stop) __asm__ volatile("pause" ::: "memory");
}

/* Machine check exceptions taken so far (the "MCE:" row of /proc/interrupts, all CPUs). */
static long mce_count(void) {
  FILE *f = fopen("/proc/interrupts", "r");
  if (!f) return -1;
  char line[1024];
  long total = -1;
  while (fgets(line, sizeof line, f)) {
    char *p = line;
    while (*p == ' ') p++;
    if (strncmp(p, "MCE:", 4)) continue;
    total = 0;
    p += 4;
    for (;;) {
      char *e;
      long v = strtol(p, &e, 10);
      if (e == p) break;
      total += v;
      p = e;
    }
  }
  fclose(f);
  return total;
}

/* State letter of a task ('R' running, 'S' sleeping, …; 0 when it is gone). */
static char task_state(pid_t pid, pid_t tid) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = 0;
  char *q = strrchr(buf, ')');
  return q && q[1] == ' ' ? q[2] : 0;
}

/* Executes one command in the calling thread; writes a JSON object body into r. */
static void exec_cmd(char *line, struct sb *r);

static void *thread_main(void *arg) {
  struct thread *t = arg;
  set_policy(t->policy);
  register_thread(t->name);
  char line[4096];
  for (;;) {
    ssize_t n = read(t->cmd[0], line, sizeof line - 1);
    if (n <= 0) { if (n < 0 && errno == EINTR) continue; return NULL; }
    line[n] = 0;
    int spin = !strncmp(line, "spin", 4);
    struct sb r = {0};
    exec_cmd(line, &r);
    (void)!write(t->res[1], r.p, r.n);
    sb_free(&r);
    if (spin) {
      if (sigsetjmp(access_jb, 1) == 0) { in_access = 1; spin_until_stop(); }
      in_access = 0;
    }
  }
}

static unsigned long map_addr(const char *name) {
  for (int i = 0; i < nmaps; i++) if (!strcmp(maps[i].name, name)) return maps[i].addr;
  return 0;
}

static int do_map(char **a, int n, struct sb *r) {
  /* map NAME KIND SHARED PATH OFFSET PAGES FLAGS POPULATE SEED */
  if (n < 10) return -EINVAL;
  const char *name = a[1], *kind = a[2], *path = a[4], *flags = a[7], *pop = a[8];
  int shared = atoi(a[3]);
  unsigned long off = strtoul(a[5], 0, 0), pages = strtoul(a[6], 0, 0), seed = strtoul(a[9], 0, 0);
  unsigned long len = pages * PAGE;
  int huge = !strcmp(kind, "hugetlb") || !strcmp(kind, "hugetlbfs") || strstr(flags, "huge") != NULL;
  int thp = strstr(flags, "thp") != NULL;
  if (huge) len = (len + HUGE2M - 1) & ~(HUGE2M - 1);
  void *p = MAP_FAILED;
  int mf = shared ? MAP_SHARED : MAP_PRIVATE;
  if (!strcmp(kind, "anon") || (!strcmp(kind, "shmem") && !strcmp(path, "-"))) {
    if (!strcmp(kind, "shmem")) mf = MAP_SHARED;
    if (thp) {
      void *q = mmap(NULL, len + HUGE2M, PROT_READ | PROT_WRITE, mf | MAP_ANONYMOUS, -1, 0);
      if (q == MAP_FAILED) return -errno;
      unsigned long al = ((unsigned long)q + HUGE2M - 1) & ~(HUGE2M - 1);
      p = mmap((void *)al, len, PROT_READ | PROT_WRITE, mf | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (p != MAP_FAILED && madvise(p, len, MADV_HUGEPAGE) < 0) return -errno;
    } else {
      p = mmap(NULL, len, PROT_READ | PROT_WRITE, mf | MAP_ANONYMOUS, -1, 0);
    }
  } else if (!strcmp(kind, "file") || !strcmp(kind, "shmem") || !strcmp(kind, "hugetlbfs")) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return -errno;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, (!strcmp(kind, "file") ? mf : MAP_SHARED), fd, huge ? 0 : off * PAGE);
    close(fd);
  } else if (!strcmp(kind, "memfd")) {
    int fd = memfd_create(name, 0);
    if (fd < 0) return -errno;
    if (ftruncate(fd, len) < 0) return -errno;
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
  } else if (!strcmp(kind, "sysv-shm")) {
    int id = shmget(IPC_PRIVATE, len, IPC_CREAT | 0600 | (huge ? SHM_HUGETLB : 0));
    if (id < 0) return -errno;
    p = shmat(id, NULL, 0);
    shmctl(id, IPC_RMID, NULL);
    if (p == (void *)-1) p = MAP_FAILED;
  } else if (!strcmp(kind, "hugetlb")) {
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  } else {
    return -ENOSYS;
  }
  if (p == MAP_FAILED) return -errno;
  if (strstr(flags, "mlock") && mlock(p, len) < 0) return -errno;
  unsigned long touch = pages;
  if (!strcmp(pop, "write")) {
    for (unsigned long i = 0; i < touch; i++) fill_page((char *)p + i * PAGE, pattern(seed, i));
  } else if (!strcmp(pop, "read")) {
    volatile unsigned long sink = 0;
    for (unsigned long i = 0; i < touch; i++) sink += *(volatile unsigned long *)((char *)p + i * PAGE);
    (void)sink;
  }
  if (nmaps < MAXMAP) {
    snprintf(maps[nmaps].name, sizeof maps[nmaps].name, "%s", name);
    maps[nmaps].addr = (unsigned long)p;
    maps[nmaps].len = len;
    nmaps++;
  }
  sb_add(r, ",\"addr\":\"0x%lx\"", (unsigned long)p);
  return 0;
}


static void exec_cmd(char *line, struct sb *r) {
  char *a[32];
  int n = 0;
  char *save = NULL;
  for (char *s = strtok_r(line, " \n", &save); s && n < 32; s = strtok_r(NULL, " \n", &save)) a[n++] = s;
  volatile long ret = 0;
  volatile int err = 0;
  sb_add(r, "{\"tid\":%d", gettid_());
  if (n == 0) { ret = -EINVAL; goto done; }
  const char *c = a[0];
  if (!strcmp(c, "map")) {
    ret = do_map(a, n, r);
  } else if (!strcmp(c, "open") && n >= 3) { /* open NAME PATH */
    int fd = open(a[2], O_RDWR);
    if (fd < 0) ret = -errno;
    else if (nfds < MAXFILE) { fds[nfds] = fd; snprintf(fdnames[nfds], 32, "%s", a[1]); nfds++; }
  } else if (!strcmp(c, "thread") && n >= 3) { /* thread NAME POLICY */
    struct thread *t = &threads[nthreads++];
    snprintf(t->name, sizeof t->name, "%s", a[1]);
    t->policy = parse_policy(a[2]);
    if (pipe(t->cmd) < 0 || pipe(t->res) < 0) { ret = -errno; goto done; }
    errno = pthread_create(&t->th, NULL, thread_main, t);
    if (errno) ret = -errno;
    msleep(5);
  } else if (!strcmp(c, "access") && n >= 3) { /* access ADDR read|write */
    volatile char *p = (volatile char *)strtoul(a[1], 0, 0);
    int wr = !strcmp(a[2], "write");
    if (sigsetjmp(access_jb, 1) == 0) {
      in_access = 1;
      if (wr) *p = *p + 1; else { volatile char x = *p; (void)x; }
      in_access = 0;
      ret = 0;
    } else {
      ret = -EFAULT;
      sb_add(r, ",\"sigbus\":true");
    }
  } else if (!strcmp(c, "madvise") && n >= 4) { /* madvise ADDR LEN ADVICE */
    ret = madvise((void *)strtoul(a[1], 0, 0), strtoul(a[2], 0, 0), atoi(a[3]));
    if (ret < 0) ret = -errno;
  } else if (!strcmp(c, "prctl") && n >= 6) {
    errno = 0;
    ret = prctl(atoi(a[1]), strtoul(a[2], 0, 0), strtoul(a[3], 0, 0), strtoul(a[4], 0, 0), strtoul(a[5], 0, 0));
    if (ret < 0) ret = -errno;
  } else if ((!strcmp(c, "pread") || !strcmp(c, "pwrite")) && n >= 5) { /* pread FILE PAGE PAGES SEED */
    int fd = file_fd(a[1]);
    unsigned long pg = strtoul(a[2], 0, 0), np = strtoul(a[3], 0, 0), seed = strtoul(a[4], 0, 0);
    char *buf = aligned_alloc(PAGE, np * PAGE);
    if (fd < 0) ret = -EBADF;
    else if (c[1] == 'r') {
      ret = pread(fd, buf, np * PAGE, pg * PAGE);
    } else {
      for (unsigned long i = 0; i < np; i++) fill_page(buf + i * PAGE, pattern(seed, pg + i));
      ret = pwrite(fd, buf, np * PAGE, pg * PAGE);
    }
    if (ret < 0) ret = -errno;
    free(buf);
  } else if (!strcmp(c, "fsync") && n >= 2) {
    int fd = file_fd(a[1]);
    ret = fd < 0 ? -EBADF : fsync(fd);
    if (ret < 0 && fd >= 0) ret = -errno;
  } else if (!strcmp(c, "msync") && n >= 2) {
    unsigned long ad = map_addr(a[1]);
    ret = -EINVAL;
    for (int i = 0; i < nmaps; i++) if (!strcmp(maps[i].name, a[1])) { ret = msync((void *)ad, maps[i].len, MS_SYNC); if (ret < 0) ret = -errno; }
  } else if (!strcmp(c, "munmap") && n >= 2) {
    ret = -EINVAL;
    for (int i = 0; i < nmaps; i++) if (!strcmp(maps[i].name, a[1])) { ret = munmap((void *)maps[i].addr, maps[i].len); if (ret < 0) ret = -errno; }
  } else if (!strcmp(c, "pageout") && n >= 3) {
    ret = madvise((void *)strtoul(a[1], 0, 0), strtoul(a[2], 0, 0), MADV_PAGEOUT);
    if (ret < 0) ret = -errno;
  } else if (!strcmp(c, "spin")) {
    /* Reply first, then run user code until the controller sets sh->stop (or a SIGBUS hits). */
    sb_add(r, ",\"ret\":0,\"errno\":0}\n");
    return;
  } else if (!strcmp(c, "sigbus") && n >= 2) {
    /* A fork()ed workload process takes its own SIGBUS disposition (it inherits the parent's). */
    sigbus_mode = !strcmp(a[1], "default") ? 1 : !strcmp(a[1], "ignore") ? 2 : !strcmp(a[1], "block") ? 3 : 0;
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGBUS);
    sigprocmask(sigbus_mode == 3 ? SIG_BLOCK : SIG_UNBLOCK, &ss, NULL);
    if (sigbus_mode == 2) signal(SIGBUS, SIG_IGN);
    else {
      struct sigaction sa = {0};
      sa.sa_sigaction = on_sigbus;
      sa.sa_flags = SA_SIGINFO | SA_RESTART;
      sigaction(SIGBUS, &sa, NULL);
    }
  } else if (!strcmp(c, "comm") && n >= 2) {
    ret = prctl(PR_SET_NAME, a[1], 0, 0, 0);
    if (ret < 0) ret = -errno;
  } else if (!strcmp(c, "mcekillget")) {
    ret = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
  } else {
    ret = -ENOSYS;
  }
done:
  if (ret < 0) { err = (int)-ret; }
  sb_add(r, ",\"ret\":%ld,\"errno\":%d}\n", ret, err);
}

/* The main loop of a workload process. */
static void proc_loop(const char *name, int child) {
  char path[128];
  snprintf(myname, sizeof myname, "%s", name);
  /* Workload processes die with the agent; a fork()ed child must outlive its parent (a killed
   * parent is part of many cases): the agent, a subreaper, kills it at the next case. */
  if (!child) prctl(PR_SET_PDEATHSIG, SIGKILL);
  snprintf(path, sizeof path, "/run/hwp/%s.cmd", name);
  int cmd = open(path, O_RDWR);
  snprintf(path, sizeof path, "/run/hwp/%s.res", name);
  int res = open(path, O_RDWR);
  if (cmd < 0 || res < 0) _exit(120);
  FILE *in = fdopen(cmd, "r");
  char line[4096];
  while (fgets(line, sizeof line, in)) {
    char *sp = strchr(line, ' ');
    char tname[32] = "main";
    /* Every command starts with the thread it runs in. */
    if (sp) { *sp = 0; snprintf(tname, sizeof tname, "%s", line); memmove(line, sp + 1, strlen(sp + 1) + 1); }
    if (!strncmp(line, "exit", 4)) _exit(0);
    if (!strncmp(line, "fork ", 5)) {
      char child[32];
      sscanf(line + 5, "%31s", child);
      pid_t p = fork();
      if (p == 0) {
        nthreads = 0;
        snprintf(myname, sizeof myname, "%s", child);
        register_thread("main");
        proc_loop(child, 1);
        _exit(0);
      }
      char rep[128];
      int k = snprintf(rep, sizeof rep, "{\"tid\":%d,\"ret\":%d,\"errno\":%d}\n", gettid_(), p < 0 ? -errno : p, p < 0 ? errno : 0);
      (void)!write(res, rep, k);
      continue;
    }
    int spin = !strncmp(line, "spin", 4);
    struct sb r = {0};
    if (strcmp(tname, "main") != 0) {
      struct thread *t = NULL;
      for (int i = 0; i < nthreads; i++) if (!strcmp(threads[i].name, tname)) t = &threads[i];
      if (!t) { sb_add(&r, "{\"ret\":%d,\"errno\":%d}\n", -ESRCH, ESRCH); }
      else {
        (void)!write(t->cmd[1], line, strlen(line));
        char buf[8192];
        ssize_t k = read(t->res[0], buf, sizeof buf - 1);
        if (k > 0) { buf[k] = 0; sb_add(&r, "%s", buf); }
        else sb_add(&r, "{\"ret\":%d,\"errno\":%d}\n", -EIO, EIO);
      }
    } else {
      exec_cmd(line, &r);
    }
    (void)!write(res, r.p, r.n);
    sb_free(&r);
    if (spin && strcmp(tname, "main") == 0) {
      if (sigsetjmp(access_jb, 1) == 0) { in_access = 1; spin_until_stop(); }
      in_access = 0;
    }
  }
  _exit(0);
}

/* ---------------------------------------------------------------- the controller */
struct ref { char name[96]; char kind[8]; char proc[32]; char map[32]; char file[32]; unsigned long page, off, pfn, vaddr; int known; };
#define MAXREF 128
static struct ref refs[MAXREF];
static int nrefs;
struct cproc { char name[32]; int cmd, res, slot; unsigned long maps_addr[MAXMAP]; char maps_name[MAXMAP][32]; int nmaps; };
static struct cproc cprocs[MAXPROC];
static int ncprocs;
struct cfile { char name[32]; char path[128]; unsigned long seed; char dirty[1024]; };
static struct cfile files[MAXFILE];
static int nfiles;
static int kmsg = -1;
static int settle_ms = 30;

static struct cproc *cproc_by(const char *name) {
  for (int i = 0; i < ncprocs; i++) if (!strcmp(cprocs[i].name, name)) return &cprocs[i];
  return NULL;
}
static struct prec *prec_of(struct cproc *p) { return &sh->proc[p->slot]; }

static void kmsg_drain(struct sb *s, int json) {
  char buf[8192];
  int first = 1;
  for (;;) {
    ssize_t n = read(kmsg, buf, sizeof buf - 1);
    if (n < 0) { if (errno == EPIPE) continue; break; }
    if (n == 0) break;
    buf[n] = 0;
    char *msg = strchr(buf, ';');
    if (!msg) continue;
    msg++;
    char *nl = strchr(msg, '\n');
    if (nl) *nl = 0;
    if (json) { if (!first) sb_add(s, ","); sb_json_str(s, msg); }
    first = 0;
  }
}

/* Sends a command to a process and waits for its one-line reply (or its death). */
static int proc_call(struct cproc *p, const char *thread, const char *cmd, char *reply, size_t rlen, int timeout_ms) {
  char line[4096];
  int k = snprintf(line, sizeof line, "%s %s\n", thread ? thread : "main", cmd);
  if (prec_of(p)->state != 1) { snprintf(reply, rlen, "{\"ret\":%d,\"errno\":%d,\"dead\":true}", -ESRCH, ESRCH); return -1; }
  if (write(p->cmd, line, k) != k) { snprintf(reply, rlen, "{\"ret\":%d,\"errno\":%d}", -EIO, EIO); return -1; }
  int waited = 0;
  for (;;) {
    struct pollfd pf = { p->res, POLLIN, 0 };
    int r = poll(&pf, 1, 20);
    if (r > 0) {
      ssize_t n = read(p->res, reply, rlen - 1);
      if (n > 0) { reply[n] = 0; char *nl = strchr(reply, '\n'); if (nl) *nl = 0; return 0; }
    }
    on_sigchld(0);
    if (prec_of(p)->state != 1) { snprintf(reply, rlen, "{\"ret\":null,\"errno\":0,\"dead\":true}"); return -1; }
    waited += 20;
    if (waited > timeout_ms) { snprintf(reply, rlen, "{\"ret\":null,\"errno\":0,\"timeout\":true}"); return -1; }
  }
}

static int new_slot(const char *name) {
  for (int i = 0; i < MAXPROC; i++) if (sh->proc[i].state == 0) {
    memset(&sh->proc[i], 0, sizeof sh->proc[i]);
    snprintf(sh->proc[i].name, sizeof sh->proc[i].name, "%s", name);
    return i;
  }
  return -1;
}

static struct cproc *open_cproc(const char *name) {
  char path[128];
  struct cproc *p = &cprocs[ncprocs++];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s", name);
  snprintf(path, sizeof path, "/run/hwp/%s.cmd", name);
  unlink(path); mkfifo(path, 0600);
  p->cmd = open(path, O_RDWR);
  snprintf(path, sizeof path, "/run/hwp/%s.res", name);
  unlink(path); mkfifo(path, 0600);
  p->res = open(path, O_RDWR | O_NONBLOCK);
  p->slot = new_slot(name);
  return p;
}

static unsigned long read_u64_at(const char *path, unsigned long index) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return 0;
  unsigned long v = 0;
  if (pread(fd, &v, 8, index * 8) != 8) v = 0;
  close(fd);
  return v;
}

static unsigned long pagemap_of(int pid, unsigned long vaddr) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
  return read_u64_at(path, vaddr / PAGE);
}

static unsigned long cproc_map(struct cproc *p, const char *map) {
  for (int i = 0; i < p->nmaps; i++) if (!strcmp(p->maps_name[i], map)) return p->maps_addr[i];
  return 0;
}

static struct ref *ref_by(const char *name) {
  for (int i = 0; i < nrefs; i++) if (!strcmp(refs[i].name, name)) return &refs[i];
  return NULL;
}
static struct cfile *file_by(const char *name) {
  for (int i = 0; i < nfiles; i++) if (!strcmp(files[i].name, name)) return &files[i];
  return NULL;
}

/* Resolves a reference to a pfn (and a virtual address for process pages). */
static int resolve(struct ref *r) {
  if (!strcmp(r->kind, "proc")) {
    struct cproc *p = cproc_by(r->proc);
    if (!p) return -ESRCH;
    unsigned long base = cproc_map(p, r->map);
    if (!base) return -ENOENT;
    r->vaddr = base + r->page * PAGE + r->off;
    if (prec_of(p)->state == 1) {
      unsigned long e = pagemap_of(prec_of(p)->pid, r->vaddr);
      if (e >> 63) { r->pfn = e & ((1UL << 55) - 1); r->known = 1; }
    }
    return r->known ? 0 : -ENOENT;
  }
  if (!strcmp(r->kind, "file")) {
    struct cfile *f = file_by(r->file);
    if (!f) return -ENOENT;
    /* A poisoned page keeps its pfn; touching it through a mapping would SIGBUS the agent. */
    if (r->known && (read_u64_at("/proc/kpageflags", r->pfn) >> 19 & 1)) return 0;
    int fd = open(f->path, O_RDONLY);
    if (fd < 0) return -errno;
    void *m = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, r->page * PAGE);
    close(fd);
    if (m == MAP_FAILED) return -errno;
    unsigned char vec = 0;
    if (mincore(m, PAGE, &vec) == 0 && (vec & 1)) {
      volatile char x = *(volatile char *)m; (void)x;
      unsigned long e = pagemap_of(getpid(), (unsigned long)m);
      if (e >> 63) { r->pfn = e & ((1UL << 55) - 1); r->known = 1; }
    }
    munmap(m, PAGE);
    return r->known ? 0 : -ENOENT;
  }
  if (!strcmp(r->kind, "zero")) {
    void *m = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    volatile char x = *(volatile char *)m; (void)x;
    unsigned long e = pagemap_of(getpid(), (unsigned long)m);
    r->pfn = e & ((1UL << 55) - 1); r->known = 1;
    return 0;
  }
  if (!strcmp(r->kind, "free") && !r->known) {
    /* free[N]: the N-th page (from the top of memory down) that heads a block in the buddy
     * allocator (KPF_BUDDY, not KPF_HWPOISON). A page just freed by a process would sit on a
     * per-cpu list, where it is not PageBuddy (hwpoison_inject's filter pre-check skips it). */
    unsigned long found = 0, want = r->page, top = 0;
    int fd = open("/proc/kpageflags", O_RDONLY);
    if (fd < 0) return -errno;
    char mi[8192];
    /* MemTotal bounds the scan; kpageflags itself has no useful size. */
    if (read_file("/proc/meminfo", mi, sizeof mi) > 0) top = strtoul(strchr(mi, ':') + 1, 0, 10) / 4 + 0x20000;
    static unsigned long buf[4096];
    for (long base = (long)top - 4096; base >= 0x1000 && !r->known; base -= 4096) {
      ssize_t n = pread(fd, buf, sizeof buf, base * 8);
      if (n <= 0) continue;
      for (long i = n / 8 - 1; i >= 0; i--) {
        unsigned long f = buf[i];
        if ((f >> 10 & 1) && !(f >> 19 & 1) && !(f >> 20 & 1)) {
          if (found++ == want) { r->pfn = base + i; r->known = 1; break; }
        }
      }
    }
    close(fd);
    return r->known ? 0 : -ENOENT;
  }
  return r->known ? 0 : -ENOENT; /* pfn / phys are known from the start */
}

/* What a read of the page returns, without signals: via /proc/PID/mem or pread of the file. */
static const char *probe_data(struct ref *r) {
  unsigned long buf[PAGE / 8];
  ssize_t n = -1;
  unsigned long seed = 0, page = r->page, oldseed = 0;
  if (!strcmp(r->kind, "proc")) {
    struct cproc *p = cproc_by(r->proc);
    if (!p || prec_of(p)->state != 1) return "lost";
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", prec_of(p)->pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return "lost";
    resolve(r);
    n = pread(fd, buf, PAGE, r->vaddr & ~(PAGE - 1));
    close(fd);
    seed = strtoul(r->file, 0, 0); /* the mapping's pattern seed (set by the ref command) */
    oldseed = seed;
  } else if (!strcmp(r->kind, "file")) {
    struct cfile *f = file_by(r->file);
    if (!f) return "lost";
    int fd = open(f->path, O_RDONLY);
    if (fd < 0) return "lost";
    n = pread(fd, buf, PAGE, r->page * PAGE);
    close(fd);
    /* A page left dirty at setup holds pattern SEED+1 ("old" = SEED, the disk copy); a clean one SEED. */
    seed = f->seed + 1;
    oldseed = f->seed;
    int dirty = !strcmp(f->dirty, "*") || (strcmp(f->dirty, "-") && ({ char _t[1040], _k[32]; snprintf(_t, sizeof _t, ",%s,", f->dirty); snprintf(_k, sizeof _k, ",%lu,", page); strstr(_t, _k) != NULL; }));
    if (!dirty) oldseed = ~0UL;
  } else {
    return "lost";
  }
  if (n != (ssize_t)PAGE) return n == 0 ? "zero" : "lost";
  int zero = 1;
  for (size_t i = 0; i < PAGE / 8; i++) if (buf[i]) { zero = 0; break; }
  if (zero) return "zero";
  if (buf[0] == pattern(seed, page) || buf[1] == pattern(seed, page) + 1) return "intact";
  if (buf[0] == pattern(oldseed, page)) return "old";
  return "intact";
}

static long meminfo_value(const char *key) {
  char buf[8192];
  if (read_file("/proc/meminfo", buf, sizeof buf) < 0) return -1;
  char *l = strstr(buf, key);
  return l ? atol(strchr(l, ':') + 1) : -1;
}

static void add_meminfo(struct sb *s) {
  char buf[8192];
  if (read_file("/proc/meminfo", buf, sizeof buf) < 0) return;
  sb_add(s, ",\"meminfo\":{");
  int first = 1;
  for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n")) {
    char key[64];
    long v;
    if (sscanf(l, "%63[^:]: %ld", key, &v) == 2) {
      sb_add(s, "%s\"%s\":%ld", first ? "" : ",", key, v);
      first = 0;
    }
  }
  sb_add(s, "}");
}

static void add_mfstats(struct sb *s) {
  DIR *d = opendir("/sys/devices/system/node/node0/memory_failure");
  if (!d) return;
  sb_add(s, ",\"mf\":{\"node0\":{");
  int first = 1;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[300], buf[64];
    snprintf(path, sizeof path, "/sys/devices/system/node/node0/memory_failure/%s", e->d_name);
    if (read_file(path, buf, sizeof buf) > 0) { sb_add(s, "%s\"%s\":%ld", first ? "" : ",", e->d_name, atol(buf)); first = 0; }
  }
  closedir(d);
  sb_add(s, "}}");
}

static void add_procs(struct sb *s) {
  sb_add(s, ",\"procs\":{");
  int first = 1;
  for (int i = 0; i < ncprocs; i++) {
    struct prec *p = prec_of(&cprocs[i]);
    sb_add(s, "%s\"%s\":{\"pid\":%d,\"alive\":%s", first ? "" : ",", cprocs[i].name, p->pid, p->state == 1 ? "true" : "false");
    if (p->state == 3) sb_add(s, ",\"sig\":%d", WTERMSIG(p->status));
    if (p->state == 2) sb_add(s, ",\"exit\":%d", WEXITSTATUS(p->status));
    sb_add(s, ",\"threads\":{");
    int tf = 1;
    for (int t = 0; t < sh->nthr && t < MAXTHR; t++)
      if (!strcmp(sh->thr[t].proc, cprocs[i].name)) { sb_add(s, "%s\"%s\":%d", tf ? "" : ",", sh->thr[t].name, sh->thr[t].tid); tf = 0; }
    sb_add(s, "}}");
    first = 0;
  }
  sb_add(s, "}");
}

/* The refs' frames when the running step started (the last step's resolution): a step's
 * kpageflags/kpagecount are read there, as the simulator does, so a page that migrated (soft
 * offline) or was refaulted is judged at the frame the step acted on. */
static unsigned long start_pfn[MAXREF];
static int start_known[MAXREF];
static int at_step;

static void add_refs(struct sb *s, char **probes, int nprobes) {
  sb_add(s, ",\"refs\":{");
  for (int i = 0; i < nrefs; i++) {
    struct ref *r = &refs[i];
    resolve(r);
    sb_add(s, "%s", i ? "," : "");
    sb_json_str(s, r->name);
    sb_add(s, ":{");
    int known = r->known || (at_step && start_known[i]);
    unsigned long pfn = at_step && start_known[i] ? start_pfn[i] : r->pfn;
    if (known) sb_add(s, "\"pfn\":\"0x%lx\",\"kpf\":\"%lu\",\"kpc\":%lu", r->pfn, read_u64_at("/proc/kpageflags", pfn), read_u64_at("/proc/kpagecount", pfn));
    /* The frame the ref maps now, when the step moved it (a COW, a migration, a refault): the
     * case's end expectations read it there, as the simulator resolves them after the steps. */
    if (known && r->known && pfn != r->pfn) sb_add(s, ",\"kpfNow\":\"%lu\"", read_u64_at("/proc/kpageflags", r->pfn));
    if (!strcmp(r->kind, "proc")) {
      struct cproc *p = cproc_by(r->proc);
      sb_add(s, "%s\"addr\":\"0x%lx\"", known ? "," : "", r->vaddr);
      if (p && prec_of(p)->state == 1) sb_add(s, ",\"pagemap\":\"0x%lx\",\"pid\":%d", pagemap_of(prec_of(p)->pid, r->vaddr), prec_of(p)->pid);
    }
    for (int j = 0; j < nprobes; j++) if (!strcmp(probes[j], r->name)) sb_add(s, "%s\"data\":\"%s\"", (known || !strcmp(r->kind, "proc")) ? "," : "", probe_data(r));
    sb_add(s, "}");
  }
  sb_add(s, "}");
}

static const char *thread_of(int tid) {
  for (int i = 0; i < sh->nthr && i < MAXTHR; i++) if (sh->thr[i].tid == tid) return sh->thr[i].name;
  return NULL;
}
static const char *proc_of_pid(int pid) {
  for (int i = 0; i < MAXPROC; i++) if (sh->proc[i].state && sh->proc[i].pid == pid) return sh->proc[i].name;
  return "?";
}

static void add_signals(struct sb *s, int from, int to) {
  sb_add(s, ",\"signals\":[");
  int first = 1;
  for (int i = from; i < to && i < MAXREC; i++) {
    struct sigrec *r = &sh->rec[i];
    if (r->probe) continue;
    const char *t = thread_of(r->tid);
    sb_add(s, "%s{\"proc\":\"%s\",\"pid\":%d,\"tid\":%d,\"signo\":%d,\"code\":%d,\"addr\":\"0x%lx\",\"lsb\":%d,\"fatal\":%s", first ? "" : ",", proc_of_pid(r->pid), r->pid, r->tid, r->signo, r->code, r->addr,
           r->lsb, r->fatal ? "true" : "false");
    if (t && strcmp(t, "main")) sb_add(s, ",\"thread\":\"%s\"", t);
    sb_add(s, "}");
    first = 0;
  }
  sb_add(s, "]");
}

static int spawn(const char *name, const char *sigbus, const char *policy, const char *comm, const char *memcg) {
  struct cproc *p = open_cproc(name);
  pid_t pid = fork();
  if (pid == 0) {
    sigbus_mode = !strcmp(sigbus, "default") ? 1 : !strcmp(sigbus, "ignore") ? 2 : !strcmp(sigbus, "block") ? 3 : 0;
    if (sigbus_mode == 2) signal(SIGBUS, SIG_IGN);
    if (sigbus_mode == 3) { sigset_t ss; sigemptyset(&ss); sigaddset(&ss, SIGBUS); sigprocmask(SIG_BLOCK, &ss, NULL); }
    if (strcmp(memcg, "-")) {
      char path[160], me[32];
      snprintf(path, sizeof path, "/sys/fs/cgroup/%s/cgroup.procs", memcg);
      snprintf(me, sizeof me, "%d", getpid());
      write_file(path, me);
    }
    prctl(PR_SET_NAME, comm);
    set_policy(parse_policy(policy));
    snprintf(myname, sizeof myname, "%s", name);
    register_thread("main");
    proc_loop(name, 0);
  }
  sh->proc[p->slot].pid = pid;
  sh->proc[p->slot].state = 1;
  return pid;
}

static int run_shell(const char *cmd) {
  pid_t p = fork();
  if (p == 0) { execl("/bin/sh", "sh", "-c", cmd, (char *)NULL); _exit(127); }
  int st;
  while (waitpid(p, &st, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static unsigned long parse_num(const char *s) { return strtoul(s, 0, 0); }

/* Writes the pattern of a file: every page except holes with seed, then dirty pages with seed+1. */
static int make_file(char **a, int n) {
  /* file NAME PATH PAGES HOLES CACHED DIRTY SEED  (lists: '-' none, '*' all, or 1,2,3) */
  if (n < 8) return -EINVAL;
  struct cfile *f = &files[nfiles++];
  snprintf(f->name, sizeof f->name, "%s", a[1]);
  snprintf(f->path, sizeof f->path, "%s", a[2]);
  unsigned long pages = parse_num(a[3]);
  f->seed = parse_num(a[7]);
  snprintf(f->dirty, sizeof f->dirty, "%s", a[6]);
  int fd = open(f->path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return -errno;
  if (ftruncate(fd, pages * PAGE) < 0) { close(fd); return -errno; }
  if (!strncmp(f->path, "/mnt/huge", 9)) {
    /* hugetlbfs has no write(): fill the file through a shared mapping (holes/dirty do not apply). */
    char *m = pages ? mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : NULL;
    if (m == MAP_FAILED) { int e = errno; close(fd); return -e; }
    for (unsigned long i = 0; i < pages; i++) fill_page(m + i * PAGE, pattern(f->seed, i));
    if (m) munmap(m, pages * PAGE);
    close(fd);
    return 0;
  }
  char *buf = aligned_alloc(PAGE, PAGE);
#define INLIST(l, i) (!strcmp(l, "*") || (strcmp(l, "-") && ({ int _f = 0; char _t[1024]; snprintf(_t, sizeof _t, ",%s,", l); char _k[32]; snprintf(_k, sizeof _k, ",%lu,", (unsigned long)(i)); _f = strstr(_t, _k) != NULL; _f; })))
  for (unsigned long i = 0; i < pages; i++) {
    if (INLIST(a[4], i)) continue;
    fill_page(buf, pattern(f->seed, i));
    if (pwrite(fd, buf, PAGE, i * PAGE) != (ssize_t)PAGE) { close(fd); return -errno; }
  }
  int is_shm = !strncmp(f->path, "/mnt/tmp", 8) || !strncmp(f->path, "/mnt/ramfs", 10) || !strncmp(f->path, "/mnt/huge", 9);
  if (!is_shm) {
    fsync(fd);
    if (strcmp(a[5], "*")) {
      posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      for (unsigned long i = 0; i < pages; i++) if (INLIST(a[5], i)) (void)!pread(fd, buf, PAGE, i * PAGE);
    }
  }
  for (unsigned long i = 0; i < pages; i++) {
    if (!INLIST(a[6], i)) continue;
    fill_page(buf, pattern(f->seed + 1, i));
    (void)!pwrite(fd, buf, PAGE, i * PAGE);
  }
  free(buf);
  close(fd);
  return 0;
}

static void reset_case(void) {
  sh->stop = 1;
  for (int i = 0; i < ncprocs; i++) {
    struct prec *p = prec_of(&cprocs[i]);
    if (p->state == 1) kill(p->pid, SIGKILL);
  }
  for (int i = 0; i < 100; i++) {
    on_sigchld(0);
    int alive = 0;
    for (int j = 0; j < ncprocs; j++) alive |= prec_of(&cprocs[j])->state == 1;
    if (!alive) break;
    msleep(10);
  }
  for (int i = 0; i < ncprocs; i++) { close(cprocs[i].cmd); close(cprocs[i].res); }
  memset(sh->proc, 0, sizeof sh->proc);
  sh->nthr = 0;
  sh->stop = 0;
  ncprocs = 0;
  nrefs = 0;
  nfiles = 0;
  run_shell("rm -rf /mnt/sda/* /mnt/tmp/* /mnt/ramfs/* /mnt/huge/* 2>/dev/null; rmdir /sys/fs/cgroup/hwp-* 2>/dev/null; echo 0 > /sys/kernel/debug/hwpoison/corrupt-filter-enable 2>/dev/null; echo 0 > /proc/sys/vm/nr_hugepages");
  write_file("/sys/kernel/debug/hwpoison/corrupt-filter-dev-major", "4294967295");
  write_file("/sys/kernel/debug/hwpoison/corrupt-filter-dev-minor", "4294967295");
  write_file("/sys/kernel/debug/hwpoison/corrupt-filter-flags-mask", "0");
  write_file("/sys/kernel/debug/hwpoison/corrupt-filter-flags-value", "0");
  write_file("/sys/kernel/debug/hwpoison/corrupt-filter-memcg", "0");
  write_file("/proc/sys/vm/memory_failure_early_kill", "0");
  write_file("/proc/sys/vm/memory_failure_recovery", "1");
  write_file("/proc/sys/vm/enable_soft_offline", "1");
}

static char *sysctl_path(const char *key, char *buf, size_t len) {
  snprintf(buf, len, "/proc/sys/%s", key);
  for (char *c = buf + 10; *c; c++) if (*c == '.') *c = '/';
  return buf;
}

static FILE *console_in;

/* Runs one step line: step I REPEAT SETTLE_MS PROBES ACTION ARGS... */
static void do_step(char **a, int n) {
  int idx = atoi(a[1]), repeat = atoi(a[2]), settle = atoi(a[3]);
  char *probes[MAXREF];
  int nprobes = 0;
  if (strcmp(a[4], "-")) for (char *p = strtok(a[4], ","); p && nprobes < MAXREF; p = strtok(NULL, ",")) probes[nprobes++] = p;
  char **act = a + 5;
  int na = n - 5;
  struct sb s = {0};
  int rec0 = sh->nrec;
  for (int i = 0; i < nrefs; i++) { start_pfn[i] = refs[i].pfn; start_known[i] = refs[i].known; }
  long ret = 0;
  int err = 0;
  char reply[8192] = "";
  sb_add(&s, "{\"ev\":\"step\",\"i\":%d", idx);
  struct sb extra = {0};
  for (int rep = 0; rep < (repeat < 1 ? 1 : repeat); rep++) {
    const char *c = act[0];
    reply[0] = 0;
    if (!strcmp(c, "write") && na >= 3) { /* write PATH VALUE|REF   (REF → pfn, or phys with @phys) */
      char val[128];
      const char *v = act[2];
      struct ref *r = NULL;
      if (!strncmp(v, "pfn@", 4) || !strncmp(v, "phys@", 5)) {
        r = ref_by(strchr(v, '@') + 1);
        if (!r || resolve(r) < 0) { ret = -ENOENT; err = ENOENT; sb_add(&extra, ",\"error\":\"cannot resolve %s\"", v); break; }
        if (v[1] == 'f') snprintf(val, sizeof val, "0x%lx", r->pfn); else snprintf(val, sizeof val, "0x%lx", r->pfn * PAGE);
        v = val;
      }
      if (!strncmp(v, "ino@", 4) || !strncmp(v, "major@", 6) || !strncmp(v, "minor@", 6)) {
        struct stat st;
        if (stat(strchr(v, '@') + 1, &st) < 0) { ret = -errno; err = errno; break; }
        unsigned long x = v[0] == 'i' ? (unsigned long)st.st_ino : v[1] == 'a' ? major(st.st_dev) : minor(st.st_dev);
        snprintf(val, sizeof val, "%lu", x);
        v = val;
      }
      ret = write_file(act[1], v);
      err = ret < 0 ? (int)-ret : 0;
    } else if (!strcmp(c, "call") && na >= 3) { /* call PROC THREAD CMD... ; @REF → vaddr */
      struct cproc *p = cproc_by(act[1]);
      char cmd[4096] = "";
      for (int i = 3; i < na; i++) {
        if (act[i][0] == '@') {
          struct ref *r = ref_by(act[i] + 1);
          if (r) resolve(r);
          snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s0x%lx", i > 3 ? " " : "", r ? r->vaddr : 0);
        } else {
          snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i > 3 ? " " : "", act[i]);
        }
      }
      if (!p) { ret = -ESRCH; err = ESRCH; }
      else {
        proc_call(p, act[2], cmd, reply, sizeof reply, 20000);
        char *q = strstr(reply, "\"ret\":");
        ret = q ? strtol(q + 6, 0, 10) : 0;
        q = strstr(reply, "\"errno\":");
        err = q ? atoi(q + 8) : 0;
      }
    } else if (!strcmp(c, "fork") && na >= 3) { /* fork PARENT CHILD */
      struct cproc *p = cproc_by(act[1]);
      struct cproc *ch = open_cproc(act[2]);
      if (p) {
        for (int i = 0; i < p->nmaps; i++) { ch->maps_addr[i] = p->maps_addr[i]; snprintf(ch->maps_name[i], 32, "%s", p->maps_name[i]); }
        ch->nmaps = p->nmaps;
        char cmd[64];
        snprintf(cmd, sizeof cmd, "fork %s", act[2]);
        proc_call(p, "main", cmd, reply, sizeof reply, 20000);
        char *q = strstr(reply, "\"ret\":");
        ret = q ? strtol(q + 6, 0, 10) : -ESRCH;
        if (ret > 0) { sh->proc[ch->slot].pid = (int)ret; sh->proc[ch->slot].state = 1; ret = 0; }
      } else ret = -ESRCH;
      err = ret < 0 ? (int)-ret : 0;
      msleep(20);
    } else if (!strcmp(c, "exit") && na >= 2) {
      struct cproc *p = cproc_by(act[1]);
      if (p) { char l[] = "main exit\n"; (void)!write(p->cmd, l, strlen(l)); msleep(50); on_sigchld(0); }
    } else if (!strcmp(c, "truncate") && na >= 3) {
      struct cfile *f = file_by(act[1]);
      ret = f ? truncate(f->path, parse_num(act[2]) * PAGE) : -ENOENT;
      if (ret < 0) { ret = -errno; err = errno; }
    } else if (!strcmp(c, "writeback") && na >= 2) {
      struct cfile *f = file_by(act[1]);
      int fd = f ? open(f->path, O_RDWR) : -1;
      ret = fd < 0 ? -ENOENT : sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      if (ret < 0) { err = errno; ret = -err; }
      if (fd >= 0) close(fd);
    } else if (!strcmp(c, "wait") && na >= 2) {
      msleep(atoi(act[1]));
    } else if (!strcmp(c, "mce") && na >= 4) { /* mce PROC|- THREAD REF|- : host injects, then writes "mce-done" */
      struct ref *r = strcmp(act[3], "-") ? ref_by(act[3]) : NULL;
      if (r) resolve(r);
      struct cproc *p = strcmp(act[1], "-") ? cproc_by(act[1]) : NULL;
      long before = mce_count();
      sh->stop = 0;
      pid_t spid = 0, stid = 0, h = 0;
      if (p) {
        proc_call(p, act[2], "spin", reply, sizeof reply, 5000);
        char *t = strstr(reply, "\"tid\":");
        if (t) stid = atoi(t + 6);
        spid = prec_of(p)->pid;
      } else {
        /* No consumer: spin here in a helper so the vCPU runs user code. */
        h = fork();
        if (h == 0) { spin_until_stop(); _exit(0); }
      }
      /* The host answers "mce-done N" (N machine check exceptions raised), "mce-done missed"
       * (it could not catch the vCPU in the spin loop: ask again) or plain "mce-done". */
      char line[256];
      for (int attempt = 0; attempt < 4; attempt++) {
        out("{\"ev\":\"mce\",\"i\":%d,\"phys\":\"0x%lx\",\"pfn\":\"0x%lx\",\"spin\":\"0x%lx\",\"try\":%d}", idx, r && r->known ? r->pfn * PAGE : 0UL, r && r->known ? r->pfn : 0UL, (unsigned long)&spin_until_stop, attempt);
        line[0] = 0;
        while (fgets(line, sizeof line, console_in) && strncmp(line, "mce-done", 8)) {}
        if (!strncmp(line, "mce-done missed", 15)) continue;
        int raised = atoi(line + 8);
        /* Wait (bounded) until the guest has taken the #MC: on a loaded host the vCPU may not
         * have run since the injection. */
        for (int w = 0; raised > 0 && before >= 0 && w < 200 && mce_count() < before + raised; w++) msleep(50);
        break;
      }
      sh->stop = 1;
      if (h > 0) waitpid(h, NULL, 0);
      /* The #MC's task work (memory_failure, the signal) runs before the spinner returns to user
       * mode; once it has left the loop (sleeping, dead) it is done. */
      if (spid > 0 && stid > 0) for (int w = 0; w < 200; w++) {
        char st = task_state(spid, stid);
        if (st == 0 || st == 'S' || st == 'Z' || st == 'X' || st == 'D' || st == 'T') break;
        msleep(50);
      }
      reply[0] = 0;
    } else {
      ret = -ENOSYS;
      err = ENOSYS;
    }
  }
  msleep(settle > 0 ? settle : settle_ms);
  on_sigchld(0);
  sb_add(&s, ",\"ret\":%ld,\"errno\":%d", ret, err);
  if (reply[0]) { sb_add(&s, ",\"reply\":%s", reply); }
  if (extra.p) sb_add(&s, "%s", extra.p);
  sb_free(&extra);
  sb_add(&s, ",\"log\":[");
  kmsg_drain(&s, 1);
  sb_add(&s, "]");
  int rec1 = sh->nrec;
  add_signals(&s, rec0, rec1);
  add_procs(&s);
  sh->probing = 1;
  at_step = 1;
  add_refs(&s, probes, nprobes);
  at_step = 0;
  sh->probing = 0;
  add_meminfo(&s);
  add_mfstats(&s);
  sb_add(&s, "}");
  out("%s", s.p);
  sb_free(&s);
}

static int setup_error;
static struct sb setup_err;
static void fail_setup(const char *what, long ret) {
  if (!setup_error) sb_add(&setup_err, "%s: %s", what, strerror((int)-ret));
  setup_error = 1;
}

static void controller(const char *program) {
  FILE *f = fopen(program, "r");
  if (!f) { out("{\"ev\":\"fatal\",\"error\":\"cannot open %s\"}", program); return; }
  char line[8192];
  char case_id[256] = "";
  while (fgets(line, sizeof line, f)) {
    char copy[8192];
    snprintf(copy, sizeof copy, "%s", line);
    char *a[64];
    int n = 0;
    for (char *s = strtok(line, " \n"); s && n < 64; s = strtok(NULL, " \n")) a[n++] = s;
    if (n == 0 || a[0][0] == '#') continue;
    const char *c = a[0];
    if (!strcmp(c, "case")) {
      snprintf(case_id, sizeof case_id, "%s", n > 1 ? a[1] : "?");
      reset_case();
      lseek(kmsg, 0, SEEK_END);
      setup_error = 0;
      sb_free(&setup_err);
      out("{\"ev\":\"case\",\"id\":\"%s\"}", case_id);
    } else if (!strcmp(c, "sysctl") && n >= 3) {
      char p[256];
      long r = write_file(sysctl_path(a[1], p, sizeof p), a[2]);
      if (r < 0) fail_setup(a[1], r);
    } else if (!strcmp(c, "hugepages") && n >= 2) {
      /* N free huge pages, as the case's fresh machine has. Pages poisoned by earlier cases of the
       * boot can stay counted in the pool without being free: grow the pool by the deficit. After
       * many cases memory is fragmented: compact first. */
      long want = atol(a[1]);
      /* Pool reset: free every free huge page of earlier cases, drop the page cache and compact,
       * so 2 MiB runs are found again; what stays (poisoned, still held) is counted on top. */
      write_file("/proc/sys/vm/nr_hugepages", "0");
      write_file("/proc/sys/vm/drop_caches", "3");
      write_file("/proc/sys/vm/compact_memory", "1");
      long stuck = meminfo_value("HugePages_Total");
      long total = want + (stuck > 0 ? stuck : 0);
      for (int k = 0; k < 4; k++) {
        char v[32];
        snprintf(v, sizeof v, "%ld", total);
        write_file("/proc/sys/vm/nr_hugepages", v);
        long fr = meminfo_value("HugePages_Free");
        if (fr >= want) break;
        total += want - fr;
      }
      if (meminfo_value("HugePages_Free") < want) fail_setup("hugepages", -ENOMEM);
    } else if (!strcmp(c, "memcg") && n >= 2) {
      char p[160];
      snprintf(p, sizeof p, "/sys/fs/cgroup/hwp-%s", a[1]);
      mkdir(p, 0755);
    } else if (!strcmp(c, "file")) {
      long r = make_file(a, n);
      if (r < 0) fail_setup("file", r);
    } else if (!strcmp(c, "proc") && n >= 6) { /* proc NAME SIGBUS POLICY COMM MEMCG */
      if (spawn(a[1], a[2], a[3], a[4], a[5]) < 0) fail_setup("fork", -errno);
    } else if (!strcmp(c, "pcall") && n >= 3) { /* pcall PROC THREAD CMD... (setup-time call) */
      struct cproc *p = cproc_by(a[1]);
      char reply[8192];
      char *cmd = strstr(copy, a[2]) + strlen(a[2]) + 1;
      char *nl = strchr(cmd, '\n');
      if (nl) *nl = 0;
      if (!p) { fail_setup("pcall", -ESRCH); continue; }
      proc_call(p, a[2], cmd, reply, sizeof reply, 30000);
      char *q = strstr(reply, "\"ret\":");
      long r = q ? strtol(q + 6, 0, 10) : -EIO;
      if (r < 0) { fail_setup(cmd, r); continue; }
      if (!strncmp(cmd, "map ", 4)) {
        char *ad = strstr(reply, "\"addr\":\"");
        char mname[32];
        sscanf(cmd + 4, "%31s", mname);
        if (ad && p->nmaps < MAXMAP) { p->maps_addr[p->nmaps] = strtoul(ad + 8, 0, 16); snprintf(p->maps_name[p->nmaps], 32, "%s", mname); p->nmaps++; }
      }
    } else if (!strcmp(c, "ref") && n >= 3) { /* ref NAME proc P MAP PAGE OFF SEED | file F PAGE | pfn N | phys N | zero | free */
      struct ref *r = &refs[nrefs++];
      memset(r, 0, sizeof *r);
      snprintf(r->name, sizeof r->name, "%s", a[1]);
      snprintf(r->kind, sizeof r->kind, "%s", a[2]);
      if (!strcmp(a[2], "proc") && n >= 8) {
        snprintf(r->proc, 32, "%s", a[3]); snprintf(r->map, 32, "%s", a[4]);
        r->page = parse_num(a[5]); r->off = parse_num(a[6]);
        snprintf(r->file, 32, "%s", a[7]);
      } else if (!strcmp(a[2], "file") && n >= 5) {
        snprintf(r->file, 32, "%s", a[3]); r->page = parse_num(a[4]);
      } else if (!strcmp(a[2], "pfn") && n >= 4) {
        r->pfn = parse_num(a[3]); r->known = 1;
      } else if (!strcmp(a[2], "phys") && n >= 4) {
        r->pfn = parse_num(a[3]) / PAGE; r->known = 1;
      } else if (!strcmp(a[2], "free") && n >= 4) {
        r->page = parse_num(a[3]);
      }
    } else if (!strcmp(c, "ready")) {
      /* End of setup: report it (with the setup log) and resolve the refs once. */
      struct sb s = {0};
      msleep(settle_ms);
      sb_add(&s, "{\"ev\":\"setup\",\"ok\":%s", setup_error ? "false" : "true");
      if (setup_error) { sb_add(&s, ",\"error\":"); sb_json_str(&s, setup_err.p ? setup_err.p : "?"); }
      sb_add(&s, ",\"log\":[");
      kmsg_drain(&s, 1);
      sb_add(&s, "]");
      add_signals(&s, 0, sh->nrec);
      sh->nrec = 0;
      add_procs(&s);
      add_refs(&s, NULL, 0);
      add_meminfo(&s);
      add_mfstats(&s);
      sb_add(&s, "}");
      out("%s", s.p);
      sb_free(&s);
    } else if (!strcmp(c, "step") && n >= 6) {
      if (setup_error) continue;
      do_step(a, n);
    } else if (!strcmp(c, "shell")) { /* shell CMD... : debugging aid, output as an event */
      char cmd[8192];
      snprintf(cmd, sizeof cmd, "%s 2>&1", strchr(copy, ' ') ? strchr(copy, ' ') + 1 : "true");
      FILE *pp = popen(cmd, "r");
      struct sb s = {0};
      sb_add(&s, "{\"ev\":\"shell\",\"out\":");
      char buf[65536];
      size_t k = pp ? fread(buf, 1, sizeof buf - 1, pp) : 0;
      buf[k] = 0;
      if (pp) pclose(pp);
      sb_json_str(&s, buf);
      sb_add(&s, "}");
      out("%s", s.p);
      sb_free(&s);
    } else if (!strcmp(c, "end")) {
      out("{\"ev\":\"end\",\"id\":\"%s\"}", case_id);
      reset_case();
    }
  }
  fclose(f);
}

int main(int argc, char **argv) {
  sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED) return 1;
  memset(sh, 0, sizeof *sh);
  struct sigaction sa = {0};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGBUS, &sa, NULL);
  struct sigaction sc = {0};
  sc.sa_handler = on_sigchld;
  sc.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sc, NULL);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  mkdir("/run", 0755);
  mkdir("/run/hwp", 0755);
  setvbuf(stdout, NULL, _IONBF, 0);
  /* The console: raw input (no echo) so the host can answer mce requests. */
  struct termios tio;
  if (tcgetattr(0, &tio) == 0) { cfmakeraw(&tio); tio.c_oflag |= OPOST | ONLCR; tcsetattr(0, TCSANOW, &tio); }
  console_in = fdopen(dup(0), "r");
  kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
  if (getenv("HWP_SETTLE_MS")) settle_ms = atoi(getenv("HWP_SETTLE_MS"));
  char un[256] = "";
  read_file("/proc/sys/kernel/osrelease", un, sizeof un);
  char *nl = strchr(un, '\n');
  if (nl) *nl = 0;
  out("{\"ev\":\"boot\",\"kernel\":\"%s\"}", un);
  controller(argc > 1 ? argv[1] : "/program.txt");
  out("{\"ev\":\"done\"}");
  return 0;
}
