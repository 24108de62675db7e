/*
 * A small MDB cashless reader (device #1, address 10H, level 2) for the
 * bench: `npm run hil -- --peripheral cashless=exec:'<this program> [currency]
 * [decimals]'` plays it on the simulated bus in place of the simulated reader
 * (docs/bench-peripheral.md has the line contract). It is the project's proof
 * that a device written outside the simulator, in another language, can run
 * a card sale against our VMC; the CI test compiles it with cc.
 *
 * Build: cc -O2 -Wall -o cashless tools/peripherals/cashless.c
 * Arguments: the ISO 4217 numeric currency it reports (default 840, USD) and
 * the machine's decimals (default 2); scale factor 1.
 *
 * What it does: RESET; SETUP config data (level 2, refunds, no multivend) and
 * max/min prices; EXPANSION REQUEST ID; READER ENABLE/DISABLE/CANCEL; POLL
 * with JUST RESET, BEGIN SESSION, VEND APPROVED/DENIED, END SESSION; VEND
 * REQUEST, CANCEL, SUCCESS, FAILURE, SESSION COMPLETE. A bench line
 * `# tapCard <funds>` presents a card holding <funds> less what this reader
 * has charged so far. Data it reported stays queued until the VMC's ACK;
 * RET gets it again; a command with a bad checksum gets no answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODE 0x100
#define ADDRESS 0x10
#define MAX_EVENTS 8
#define MAX_DATA 36

enum { INACTIVE = 1, DISABLED, ENABLED, SESSION_IDLE, VEND };

struct event { int n; unsigned char b[12]; };

static int currency = 840, decimals = 2;
static int state = INACTIVE, enabled = 0, just_reset = 1;
static struct event events[MAX_EVENTS];
static int n_events = 0;
static long charged = 0, funds = 0;
static int vend_price = 0;

/* The command being received (address byte first) and whether it is ours. */
static unsigned char block[40];
static int block_len = 0, receiving = 0;
/* The data answer sent and not yet acknowledged, and how many events it carried. */
static unsigned char unacked[MAX_DATA];
static int unacked_len = 0, unacked_events = 0, unacked_reset = 0;

static void queue(const unsigned char *b, int n) {
  if (n_events == MAX_EVENTS) return;
  memcpy(events[n_events].b, b, n);
  events[n_events].n = n;
  n_events++;
}

/* One answer: data bytes and a checksum carrying the mode bit. */
static void send_data(const unsigned char *d, int n) {
  int sum = 0;
  for (int i = 0; i < n; i++) {
    printf("%03x\n", d[i]);
    sum += d[i];
  }
  printf("%03x\n", (sum & 0xff) | MODE);
}

static void send_ack(void) { printf("%03x\n", 0x00 | MODE); }
static void send_nak(void) { printf("%03x\n", 0xff | MODE); }

static void reply(const unsigned char *d, int n, int events_taken, int reset_taken) {
  memcpy(unacked, d, n);
  unacked_len = n;
  unacked_events = events_taken;
  unacked_reset = reset_taken;
  send_data(d, n);
}

static int bcd(int v) { return ((v / 1000) % 10) << 12 | ((v / 100) % 10) << 8 | ((v / 10) % 10) << 4 | (v % 10); }

/* Total length of a command (address through checksum) from what has come so far; 0: not yet known. */
static int command_length(void) {
  int sub = block_len >= 2 ? block[1] : -1;
  switch (block[0] & 7) {
    case 1: return sub < 0 ? 0 : 7;
    case 3:
      if (sub < 0) return 0;
      return sub == 0x00 || sub == 0x05 ? 7 : sub == 0x02 ? 5 : 3;
    case 4: return 3;
    case 5:
      if (sub < 0) return 0;
      return sub == 0x00 ? 5 : 3;
    case 7:
      if (sub < 0) return 0;
      return sub == 0x00 ? 32 : sub == 0x04 ? 7 : 3;
    default: return 2;
  }
}

static void poll(void) {
  unsigned char d[MAX_DATA];
  int n = 0, taken = 0;
  if (just_reset) d[n++] = 0x00;
  while (taken < n_events && n + events[taken].n <= MAX_DATA) {
    memcpy(d + n, events[taken].b, events[taken].n);
    n += events[taken].n;
    taken++;
  }
  if (n == 0) send_ack();
  else reply(d, n, taken, just_reset);
}

/* The VMC acknowledged the data sent: what it carried is delivered. */
static void delivered(void) {
  if (unacked_reset) just_reset = 0;
  for (int i = 0; i < unacked_events; i++) {
    unsigned char what = events[i].b[0];
    if (what == 0x06 && state == VEND) state = SESSION_IDLE; /* denied: back to the session */
  }
  memmove(events, events + unacked_events, (n_events - unacked_events) * sizeof events[0]);
  n_events -= unacked_events;
  unacked_len = 0;
}

static void vend(int sub) {
  switch (sub) {
    case 0x00: { /* VEND REQUEST: price (scale 1), item number */
      int price = block[2] << 8 | block[3];
      if (state != SESSION_IDLE) {
        unsigned char oos[2] = {0x0b, (unsigned char)state};
        reply(oos, 2, 0, 0);
        return;
      }
      state = VEND;
      vend_price = price;
      if (price <= funds) {
        unsigned char ok[3] = {0x05, (unsigned char)(price >> 8), (unsigned char)(price & 0xff)};
        queue(ok, 3);
      } else {
        unsigned char no[1] = {0x06};
        queue(no, 1);
      }
      send_ack();
      return;
    }
    case 0x01: { /* VEND CANCEL */
      unsigned char no[1] = {0x06};
      if (state == VEND) queue(no, 1);
      send_ack();
      return;
    }
    case 0x02: /* VEND SUCCESS: charge the card */
      if (state == VEND) {
        charged += vend_price;
        funds -= vend_price;
        state = SESSION_IDLE;
      }
      send_ack();
      return;
    case 0x03: /* VEND FAILURE: nothing charged */
      if (state == VEND) state = SESSION_IDLE;
      send_ack();
      return;
    case 0x04: { /* SESSION COMPLETE: END SESSION follows on POLL */
      unsigned char end[1] = {0x07};
      if (state == SESSION_IDLE || state == VEND) {
        state = enabled ? ENABLED : DISABLED;
        queue(end, 1);
      }
      send_ack();
      return;
    }
    default:
      send_ack();
  }
}

static void command(void) {
  int sub = block_len >= 2 ? block[1] : -1;
  switch (block[0] & 7) {
    case 0: /* RESET */
      state = INACTIVE;
      enabled = 0;
      just_reset = 1;
      n_events = 0;
      send_ack();
      return;
    case 1:
      if (sub == 0x00) { /* SETUP config data */
        int c = 0x1000 | bcd(currency);
        unsigned char d[8] = {0x01, 2, (unsigned char)(c >> 8), (unsigned char)(c & 0xff), 1, (unsigned char)decimals, 5, 0x01};
        if (state == INACTIVE) state = DISABLED;
        reply(d, 8, 0, 0);
      } else if (sub == 0x01) { /* SETUP max/min prices */
        send_ack();
      } else {
        send_nak();
      }
      return;
    case 2:
      poll();
      return;
    case 3:
      vend(sub);
      return;
    case 4: /* READER */
      if (sub == 0x00) {
        enabled = 0;
        if (state == ENABLED) state = DISABLED;
      } else if (sub == 0x01) {
        enabled = 1;
        if (state == DISABLED) state = ENABLED;
      } else if (sub == 0x02) {
        unsigned char cancelled[1] = {0x08};
        queue(cancelled, 1);
      }
      send_ack();
      return;
    case 7:
      if (sub == 0x00) { /* EXPANSION REQUEST ID: manufacturer, serial, model, version */
        unsigned char d[30] = {0x09};
        memcpy(d + 1, "VFC", 3);
        memcpy(d + 4, "C00000000001", 12);
        memcpy(d + 16, "BENCHREADER ", 12);
        d[28] = 0x01;
        d[29] = 0x00;
        reply(d, 30, 0, 0);
      } else {
        send_nak();
      }
      return;
    default:
      send_ack();
  }
}

static void word(int w) {
  if (w & MODE) {
    /* An address byte: a new command, for us or someone else. Unacknowledged data stays queued. */
    unacked_len = 0;
    receiving = (w & 0xf8) == ADDRESS;
    block_len = 0;
    if (!receiving) return;
  } else if (unacked_len > 0) {
    if (w == 0x00) delivered();
    else if (w == 0xaa) send_data(unacked, unacked_len); /* RET: the same again */
    else unacked_len = 0; /* NAK: reported again at the next POLL */
    return;
  }
  if (!receiving || block_len >= (int)sizeof block) return;
  block[block_len++] = (unsigned char)(w & 0xff);
  int need = command_length();
  if (need == 0 || block_len < need) return;
  receiving = 0;
  int sum = 0;
  for (int i = 0; i < block_len - 1; i++) sum += block[i];
  if ((sum & 0xff) != block[block_len - 1]) return; /* corrupt: no answer, the VMC asks again */
  command();
}

int main(int argc, char **argv) {
  char line[128];
  if (argc > 1) currency = atoi(argv[1]);
  if (argc > 2) decimals = atoi(argv[2]);
  while (fgets(line, sizeof line, stdin)) {
    if (line[0] == '#') {
      long n;
      if (sscanf(line, "# tapCard %ld", &n) == 1 && state == ENABLED && enabled) {
        /* BEGIN SESSION, level 2: funds, media id, payment type 0 (normal card), payment data */
        long left = n - charged;
        if (left < 0) left = 0;
        if (left > 0xfffe) left = 0xfffe;
        funds = left;
        unsigned char begin[10] = {0x03, (unsigned char)(left >> 8), (unsigned char)(left & 0xff), 0x12, 0x34, 0x56, 0x78, 0x00, 0x00, 0x00};
        state = SESSION_IDLE;
        queue(begin, 10);
      }
    } else {
      word((int)strtol(line, NULL, 16));
    }
    /* The end of this answer: "+" while something waits for a POLL, else "." */
    puts(n_events > 0 || just_reset ? "+" : ".");
    fflush(stdout);
  }
  return 0;
}
