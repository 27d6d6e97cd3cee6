/*
 * nfq-impair: a link impairment for the fault tests (the kernel here has no sch_netem).
 *
 * Binds one NFQUEUE queue (iptables ... -j NFQUEUE --queue-num N, in the network namespace it runs
 * in) and gives every queued packet a verdict: dropped with probability `loss`, otherwise accepted
 * after `delay` + a uniform random share of `jitter` milliseconds; with probability `reorder` a
 * packet is held `reorder_ms` longer, so packets queued after it overtake it. Verdicts are given by
 * packet id out of order, which is what reorders.
 *
 * Usage: nfq-impair QUEUE [delay=MS] [jitter=MS] [loss=P] [reorder=P] [reorder_ms=MS] [seed=N]
 * Standard input takes lines of the same key=value words to change the settings while it runs, and
 * "stats" to print the counters. It prints "ready queue=N" once bound, a line of counters on "stats"
 * and on SIGTERM/SIGINT (then it accepts every held packet and exits 0), and exits 1 with one line
 * on stderr if the queue cannot be bound (not root, no NFQUEUE in the kernel, queue taken).
 *
 * Build: cc -O2 -o nfq-impair nfq-impair.c -lnetfilter_queue (Debian: libnetfilter-queue-dev).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A packet held until `due` (monotonic microseconds). */
struct held {
  uint64_t due;
  uint32_t id;
};

static struct held *heap;
static size_t heap_len, heap_cap;

static double delay_ms, jitter_ms, loss, reorder, reorder_ms = 40;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static unsigned long long seen, dropped, delayed, reordered, released;
static volatile sig_atomic_t stopping;

static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

/* xorshift64*: seeded, so the random choices of a run can be replayed. */
static double uniform(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void heap_push(struct held item) {
  if (heap_len == heap_cap) {
    heap_cap = heap_cap == 0 ? 1024 : heap_cap * 2;
    heap = realloc(heap, heap_cap * sizeof *heap);
    if (heap == NULL) {
      fprintf(stderr, "nfq-impair: out of memory\n");
      exit(1);
    }
  }
  size_t i = heap_len++;
  while (i > 0 && heap[(i - 1) / 2].due > item.due) {
    heap[i] = heap[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  heap[i] = item;
}

static struct held heap_pop(void) {
  struct held top = heap[0];
  struct held last = heap[--heap_len];
  size_t i = 0;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= heap_len) break;
    if (child + 1 < heap_len && heap[child + 1].due < heap[child].due) child++;
    if (heap[child].due >= last.due) break;
    heap[i] = heap[child];
    i = child;
  }
  if (heap_len > 0) heap[i] = last;
  return top;
}

static void print_stats(void) {
  printf("stats seen=%llu dropped=%llu delayed=%llu reordered=%llu released=%llu held=%zu\n", seen, dropped, delayed, reordered, released, heap_len);
  fflush(stdout);
}

/* Applies "key=value" words (and "stats"); unknown words are reported, not fatal. */
static void apply_words(char *line) {
  for (char *word = strtok(line, " \t\r\n"); word != NULL; word = strtok(NULL, " \t\r\n")) {
    if (strcmp(word, "stats") == 0) {
      print_stats();
      continue;
    }
    char *eq = strchr(word, '=');
    if (eq == NULL) {
      fprintf(stderr, "nfq-impair: ignored word %s (expected key=value)\n", word);
      continue;
    }
    *eq = '\0';
    double value = strtod(eq + 1, NULL);
    if (strcmp(word, "delay") == 0) delay_ms = value;
    else if (strcmp(word, "jitter") == 0) jitter_ms = value;
    else if (strcmp(word, "loss") == 0) loss = value;
    else if (strcmp(word, "reorder") == 0) reorder = value;
    else if (strcmp(word, "reorder_ms") == 0) reorder_ms = value;
    else if (strcmp(word, "seed") == 0) rng_state = (uint64_t)value * 2654435761ULL + 1;
    else fprintf(stderr, "nfq-impair: ignored key %s\n", word);
  }
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *data, void *unused) {
  (void)msg;
  (void)unused;
  struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
  if (header == NULL) return 0;
  uint32_t id = ntohl(header->packet_id);
  seen++;
  if (loss > 0 && uniform() < loss) {
    dropped++;
    return nfq_set_verdict(qh, id, NF_DROP, 0, NULL);
  }
  double hold_ms = delay_ms + jitter_ms * uniform();
  if (reorder > 0 && uniform() < reorder) {
    hold_ms += reorder_ms;
    reordered++;
  }
  if (hold_ms <= 0 && heap_len == 0) {
    released++;
    return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
  }
  delayed++;
  heap_push((struct held){.due = now_us() + (uint64_t)(hold_ms * 1000.0), .id = id});
  return 0;
}

static void on_signal(int signal) {
  (void)signal;
  stopping = 1;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: nfq-impair QUEUE [delay=MS] [jitter=MS] [loss=P] [reorder=P] [reorder_ms=MS] [seed=N]\n");
    return 2;
  }
  int queue = atoi(argv[1]);
  for (int i = 2; i < argc; i++) apply_words(argv[i]);

  struct nfq_handle *handle = nfq_open();
  if (handle == NULL) {
    fprintf(stderr, "nfq-impair: nfq_open failed (%s): needs root and NFQUEUE (CONFIG_NETFILTER_NETLINK_QUEUE)\n", strerror(errno));
    return 1;
  }
  struct nfq_q_handle *qh = nfq_create_queue(handle, (uint16_t)queue, on_packet, NULL);
  if (qh == NULL) {
    fprintf(stderr, "nfq-impair: cannot bind queue %d (%s): taken by another program, or not root\n", queue, strerror(errno));
    return 1;
  }
  if (nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
    fprintf(stderr, "nfq-impair: nfq_set_mode failed (%s)\n", strerror(errno));
    return 1;
  }
  nfq_set_queue_maxlen(qh, 65536);
  int fd = nfq_fd(handle);
  int rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);

  struct sigaction action = {0};
  action.sa_handler = on_signal;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  signal(SIGPIPE, SIG_IGN);

  printf("ready queue=%d\n", queue);
  fflush(stdout);

  static char buffer[1 << 16] __attribute__((aligned));
  char line[512];
  size_t line_len = 0;
  int stdin_open = 1;
  while (!stopping) {
    int timeout = -1;
    if (heap_len > 0) {
      uint64_t now = now_us();
      timeout = heap[0].due <= now ? 0 : (int)((heap[0].due - now + 999) / 1000);
    }
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
    int ready = poll(fds, stdin_open ? 2 : 1, timeout);
    if (ready < 0 && errno != EINTR) {
      fprintf(stderr, "nfq-impair: poll failed (%s)\n", strerror(errno));
      return 1;
    }
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      for (;;) {
        ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n < 0) {
          /* ENOBUFS: the kernel dropped queue messages it could not hand over; that is loss too. */
          if (errno == ENOBUFS) continue;
          break;
        }
        nfq_handle_packet(handle, buffer, (int)n);
      }
    }
    if (stdin_open && ready > 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
      ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
      if (n <= 0) {
        stdin_open = 0;
      } else {
        line_len += (size_t)n;
        char *newline;
        while ((newline = memchr(line, '\n', line_len)) != NULL) {
          *newline = '\0';
          apply_words(line);
          size_t used = (size_t)(newline - line) + 1;
          memmove(line, newline + 1, line_len - used);
          line_len -= used;
        }
        if (line_len == sizeof line - 1) line_len = 0;
      }
    }
    uint64_t now = now_us();
    while (heap_len > 0 && heap[0].due <= now) {
      struct held item = heap_pop();
      released++;
      nfq_set_verdict(qh, item.id, NF_ACCEPT, 0, NULL);
    }
  }
  while (heap_len > 0) {
    struct held item = heap_pop();
    released++;
    nfq_set_verdict(qh, item.id, NF_ACCEPT, 0, NULL);
  }
  print_stats();
  nfq_destroy_queue(qh);
  nfq_close(handle);
  return 0;
}
