/*
 * MDB on an ESP32 UART: 9-bit words at 9600 baud for the vendfleet VMC.
 *
 * Not compiled in CI (there is no ESP-IDF there); built by mcconfig with the
 * Moddable SDK for ESP32 (8.2.3 requires ESP-IDF 6.0). Compiled by hand against
 * ESP-IDF 6.0.2 and master and Moddable 8.2.3 headers with -Wall -Wextra
 * -Werror (docs/hardware.md, "compiled against"), which also explains the
 * design; the short version:
 *
 * Ninth bit. The ESP32 UART has no 9-bit mode, but it has parity, and MDB's
 * mode bit sits exactly where the parity bit goes (start, 8 data, mode,
 * stop). To send a word, the parity is switched per byte so that the parity
 * bit the UART computes equals the mode bit: "mark" (bit set) or "space"
 * (bit clear) parity, which the ESP32 does not have, made from even or odd
 * according to the byte's population count. Receiving, the UART checks
 * (even) parity on every byte; a byte whose ninth bit does not match its
 * even parity raises a parity error, so mode = parity(data) ^ error. The
 * receive FIFO interrupts at every byte (threshold 1) and the ISR reads the
 * byte together with the parity-error flag, which pairs them exactly as long
 * as the ISR runs within one character time (1.15 ms); when it did not (two
 * bytes in the FIFO), the frame is marked damaged and counted.
 *
 * ACK within 5 ms. JavaScript (firmware/mdb/link.ts, the same code the
 * simulator runs) decides the VMC's answer to a peripheral's data: it
 * journals a coin before it acknowledges it. Its verdict (ACK, NAK or RET, a
 * word without the mode bit right after a frame) goes straight into the TX
 * FIFO from write(). When JavaScript is late, a guard timer armed at the
 * end of the frame (MDB_GUARD_US, before t-response runs out) answers for it:
 *   - JavaScript has not read the whole frame yet: the frame's unread words
 *     are withdrawn from the receive buffer and the peripheral gets NAK. MDB
 *     says the peripheral then sends the same data again at a later POLL;
 *     JavaScript sees no complete answer (a timeout) and polls again, so the
 *     event is taken exactly once.
 *   - JavaScript has read the frame (it is inside its handler, journaling):
 *     the peripheral gets ACK if the checksum is good (NAK if not), the
 *     answer the handler gives unless it throws, and JavaScript's own
 *     verdict, when it comes, is swallowed (counted as overruled if it
 *     differed).
 * Either way a word goes out inside t-response. The guard is a GPTimer alarm
 * whose handler, like the UART's, is in IRAM (sdkconfig: the manifest's
 * sdkconfig.defaults), so it also fires while JavaScript is stalled in a
 * flash erase with the cache off, which is exactly when it is needed. Only
 * waking JavaScript goes through a small task, because posting a message to
 * the XS machine is not IRAM code.
 *
 * The JavaScript interface is firmware/board.ts's WordSerial:
 * read() -> word | undefined, write(word), close(), and onReadable(count).
 */

#include "xsmc.h"
#include "xsHost.h"
#include "mc.xs.h"			// xsID_* values
#include "builtinCommon.h"

#include "driver/uart.h"
#include "hal/uart_ll.h"
#include "hal/uart_types.h"
#if __has_include("hal/uart_periph.h")
	#include "hal/uart_periph.h"		// ESP-IDF 6: uart_periph_signal moved to esp_hal_uart
#else
	#include "soc/uart_periph.h"		// ESP-IDF 5
#endif
#include "esp_intr_alloc.h"
#include "esp_heap_caps.h"
#include "driver/gptimer.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#define MDB_MODE_BIT	0x100
#define MDB_ACK			0x00
#define MDB_NAK			0xFF
#define MDB_RING		128		// words; a block is at most 36 bytes
#define MDB_RING_MASK	(MDB_RING - 1)
#ifndef MDB_GUARD_US
	#define MDB_GUARD_US	3500	// after the frame's last stop bit; t-response is 5 ms
#endif

enum {
	kStateIdle = 0,			// nothing owed to the peripheral
	kStateAwaitVerdict,		// a frame ended; the VMC owes ACK/NAK/RET
	kStateProxied			// the guard answered; swallow JavaScript's verdict
};

typedef struct MdbRecord MdbRecord;
typedef MdbRecord *Mdb;

struct MdbRecord {
	xsSlot			obj;
	xsMachine		*the;
	xsSlot			*onReadable;
	uart_dev_t		*hw;
	intr_handle_t	interrupt;
	gptimer_handle_t guard;
	TaskHandle_t	task;		// wakes JavaScript
	uint32_t		transmit;
	uint32_t		receive;
	uint8_t			uart;
	uint8_t			useCount;	// the object, the task, a queued delivery
	uint8_t			posted;		// a delivery to JavaScript is queued
	uint8_t			txBusy;
	uint8_t			guardArmed;
	uint8_t			closing;
	uint8_t			pinsUsed;

	// receive ring (words with the mode bit), written by the ISR, read by JavaScript
	uint16_t		rx[MDB_RING];
	uint16_t		rxHead;
	uint16_t		rxTail;

	// the frame being received, then awaiting its verdict
	uint16_t		frameStart;	// ring index of its first word
	uint16_t		frameEnd;	// ring index after its last word
	uint8_t			frameSum;
	uint8_t			frameLength;
	uint8_t			frameDamaged;
	uint8_t			state;
	uint8_t			claimed;	// JavaScript has read the frame's last word
	uint8_t			proxied;	// what the guard sends (or sent) for it

	// transmit ring
	uint16_t		tx[64];
	uint8_t			txHead;
	uint8_t			txTail;

	// counters for the `stats` getter
	uint32_t		withdrawn;
	uint32_t		proxiedCount;
	uint32_t		overruled;
	uint32_t		ambiguous;
	uint32_t		errors;
};

static portMUX_TYPE gMdbLock = portMUX_INITIALIZER_UNLOCKED;

static void mdbISR(void *arg);
static bool mdbGuard(gptimer_handle_t timer, const gptimer_alarm_event_data_t *event, void *arg);
static void mdbTask(void *arg);
static void mdbDeliver(void *theIn, void *refcon, uint8_t *message, uint16_t messageLength);
static void mdbMark(xsMachine *the, void *it, xsMarkRoot markRoot);
static void mdbRelease(Mdb mdb);
void xs_mdbuart_destructor(void *data);

static const xsHostHooks ICACHE_RODATA_ATTR xsMdbHooks = {
	xs_mdbuart_destructor,
	mdbMark,
	NULL
};

static inline uint8_t IRAM_ATTR parity8(uint8_t b)
{
	b ^= b >> 4;
	b ^= b >> 2;
	b ^= b >> 1;
	return b & 1;
}

/* Start sending the next queued word with the parity that makes its ninth bit. Lock held. */
static void IRAM_ATTR mdbTransmitNext(Mdb mdb)
{
	if (mdb->txHead == mdb->txTail) {
		mdb->txBusy = 0;
		uart_ll_set_parity(mdb->hw, UART_PARITY_EVEN);	// receiving: mode = parity(data) ^ error
		return;
	}
	uint16_t word = mdb->tx[mdb->txHead];
	mdb->txHead = (mdb->txHead + 1) & 63;
	uint8_t data = (uint8_t)word;
	uint8_t mode = (word & MDB_MODE_BIT) ? 1 : 0;
	// Even parity sends parity8(data), odd its complement: "mark" or "space" from whichever matches.
	uart_ll_set_parity(mdb->hw, (parity8(data) == mode) ? UART_PARITY_EVEN : UART_PARITY_ODD);
	uart_ll_write_txfifo(mdb->hw, &data, 1);
	mdb->txBusy = 1;
	uart_ll_clr_intsts_mask(mdb->hw, UART_INTR_TX_DONE);
	uart_ll_ena_intr_mask(mdb->hw, UART_INTR_TX_DONE);
}

/* Queue a word; `urgent` (the guard's answer) goes before anything queued. Lock held. 0 when full. */
static int IRAM_ATTR mdbQueue(Mdb mdb, uint16_t word, int urgent)
{
	if (((mdb->txTail + 1) & 63) == mdb->txHead)
		return 0;
	if (urgent) {
		mdb->txHead = (mdb->txHead + 63) & 63;
		mdb->tx[mdb->txHead] = word;
	}
	else {
		mdb->tx[mdb->txTail] = word;
		mdb->txTail = (mdb->txTail + 1) & 63;
	}
	if (!mdb->txBusy)
		mdbTransmitNext(mdb);
	return 1;
}

static void IRAM_ATTR mdbDisarm(Mdb mdb)
{
	if (mdb->guardArmed) {
		gptimer_stop(mdb->guard);
		mdb->guardArmed = 0;
	}
}

/* The alarm (MDB_GUARD_US, one-shot) is set once, in the constructor: the hardware disarms it when
   it fires and gptimer_start() arms it again. Building the alarm config here would cost a memset
   call in the ISR (and a config gptimer_set_alarm_action must find in internal RAM). Lock held. */
static void IRAM_ATTR mdbArm(Mdb mdb)
{
	mdbDisarm(mdb);
	gptimer_set_raw_count(mdb->guard, 0);
	gptimer_start(mdb->guard);
	mdb->guardArmed = 1;
}

void xs_mdbuart_constructor(xsMachine *the)
{
	int uart = 2, baud = 9600;
	uint32_t transmit, receive, inverse = 0;
	xsSlot *onReadable;
	Mdb mdb;

	xsmcVars(1);
	xsmcGet(xsVar(0), xsArg(0), xsID_transmit);
	transmit = builtinGetPin(the, &xsVar(0));
	xsmcGet(xsVar(0), xsArg(0), xsID_receive);
	receive = builtinGetPin(the, &xsVar(0));
	if (!builtinIsPinFree(transmit) || !builtinIsPinFree(receive))
		xsUnknownError("in use");
	if (xsmcHas(xsArg(0), xsID_port)) {
		xsmcGet(xsVar(0), xsArg(0), xsID_port);
		uart = xsmcToInteger(xsVar(0));
		if ((uart < 0) || (uart >= UART_NUM_MAX))
			xsRangeError("invalid port");
	}
	if (xsmcHas(xsArg(0), xsID_baud)) {
		xsmcGet(xsVar(0), xsArg(0), xsID_baud);
		baud = xsmcToInteger(xsVar(0));
	}
	// The interface board's transistors may invert either line (docs/hardware.md).
	if (xsmcHas(xsArg(0), xsID_invertTransmit)) {
		xsmcGet(xsVar(0), xsArg(0), xsID_invertTransmit);
		if (xsmcTest(xsVar(0))) inverse |= UART_SIGNAL_TXD_INV;
	}
	if (xsmcHas(xsArg(0), xsID_invertReceive)) {
		xsmcGet(xsVar(0), xsArg(0), xsID_invertReceive);
		if (xsmcTest(xsVar(0))) inverse |= UART_SIGNAL_RXD_INV;
	}
	onReadable = builtinGetCallback(the, xsID_onReadable);
	if (!onReadable)
		xsUnknownError("onReadable required");
	builtinInitializeTarget(the);
	if (uart_is_driver_installed(uart))
		xsRangeError("port in use");

	uart_config_t config = {0};
	config.baud_rate = baud;
	config.data_bits = UART_DATA_8_BITS;
	config.parity = UART_PARITY_EVEN;
	config.stop_bits = UART_STOP_BITS_1;
	config.flow_ctrl = UART_HW_FLOWCTRL_DISABLE;
	if (uart_param_config(uart, &config) || uart_set_pin(uart, transmit, receive, UART_PIN_NO_CHANGE, UART_PIN_NO_CHANGE))
		xsUnknownError("uart failed");
	if (inverse && uart_set_line_inverse(uart, inverse))
		xsUnknownError("uart failed");

	// Internal RAM, never PSRAM: the ISRs use it while a flash operation has the cache off.
	mdb = heap_caps_calloc(1, sizeof(MdbRecord), MALLOC_CAP_INTERNAL | MALLOC_CAP_8BIT);
	if (!mdb)
		xsRangeError("no memory");
	mdb->obj = xsThis;
	mdb->the = the;
	mdb->onReadable = onReadable;
	mdb->uart = (uint8_t)uart;
	mdb->hw = UART_LL_GET_HW(uart);
	mdb->transmit = transmit;
	mdb->receive = receive;
	mdb->useCount = 1;
	xsmcSetHostData(xsThis, mdb);
	xsSetHostHooks(xsThis, (xsHostHooks *)&xsMdbHooks);

	gptimer_config_t timer = {
		.clk_src = GPTIMER_CLK_SRC_DEFAULT,
		.direction = GPTIMER_COUNT_UP,
		.resolution_hz = 1000000,		// microseconds
	};
	gptimer_event_callbacks_t callbacks = { .on_alarm = mdbGuard };
	// One-shot (no auto-reload). In DRAM: with CONFIG_GPTIMER_CTRL_FUNC_IN_IRAM, gptimer_set_alarm_action
	// refuses (ESP_ERR_INVALID_ARG) a config that is not in internal RAM, as a flash constant is not.
	static DRAM_ATTR const gptimer_alarm_config_t alarm = { .alarm_count = MDB_GUARD_US };
	if (gptimer_new_timer(&timer, &mdb->guard) || gptimer_register_event_callbacks(mdb->guard, &callbacks, mdb) ||
		gptimer_set_alarm_action(mdb->guard, &alarm) || gptimer_enable(mdb->guard))
		xsUnknownError("timer failed");

	mdb->useCount++;
	if (pdPASS != xTaskCreate(mdbTask, "mdb", 2048, mdb, configMAX_PRIORITIES - 4, &mdb->task)) {
		mdb->useCount--;
		xsUnknownError("task failed");
	}

	uart_ll_rxfifo_rst(mdb->hw);
	uart_ll_set_rxfifo_full_thr(mdb->hw, 1);		// an interrupt per byte: pairs it with its parity flag
	uart_ll_clr_intsts_mask(mdb->hw, UART_LL_INTR_MASK);
	if (esp_intr_alloc(uart_periph_signal[uart].irq, ESP_INTR_FLAG_IRAM, mdbISR, mdb, &mdb->interrupt))
		xsUnknownError("interrupt failed");
	// Not UART_INTR_PARITY_ERR: its raw flag is read with each byte (mdbISR), never on its own.
	uart_ll_ena_intr_mask(mdb->hw, UART_INTR_RXFIFO_FULL | UART_INTR_FRAM_ERR | UART_INTR_RXFIFO_OVF);

	xsRemember(mdb->obj);
	builtinUsePin(transmit);
	builtinUsePin(receive);
	mdb->pinsUsed = 1;
}

void xs_mdbuart_destructor(void *data)
{
	Mdb mdb = data;
	if (!mdb) return;
	if (mdb->hw)
		uart_ll_disable_intr_mask(mdb->hw, UART_LL_INTR_MASK);
	if (mdb->interrupt) {
		esp_intr_free(mdb->interrupt);
		mdb->interrupt = NULL;
	}
	if (mdb->guard) {
		mdbDisarm(mdb);
		gptimer_disable(mdb->guard);
		gptimer_del_timer(mdb->guard);
		mdb->guard = NULL;
	}
	if (mdb->pinsUsed) {
		builtinFreePin(mdb->transmit);
		builtinFreePin(mdb->receive);
		mdb->pinsUsed = 0;
	}
	if (mdb->task) {
		mdb->closing = 1;
		xTaskNotifyGive(mdb->task);		// it exits and releases its reference
	}
	mdbRelease(mdb);
}

static void mdbRelease(Mdb mdb)
{
	if (0 == __atomic_sub_fetch(&mdb->useCount, 1, __ATOMIC_SEQ_CST))
		heap_caps_free(mdb);
}

void xs_mdbuart_close(xsMachine *the)
{
	Mdb mdb = xsmcGetHostData(xsThis);
	if (mdb && xsmcGetHostDataValidate(xsThis, (void *)&xsMdbHooks)) {
		xsForget(mdb->obj);
		xs_mdbuart_destructor(mdb);
		xsmcSetHostData(xsThis, NULL);
		xsmcSetHostDestructor(xsThis, NULL);
	}
}

void xs_mdbuart_read(xsMachine *the)
{
	Mdb mdb = xsmcGetHostDataValidate(xsThis, (void *)&xsMdbHooks);
	int word = -1;

	portENTER_CRITICAL(&gMdbLock);
	if (mdb->rxHead != mdb->rxTail) {
		word = mdb->rx[mdb->rxHead];
		mdb->rxHead = (mdb->rxHead + 1) & MDB_RING_MASK;
		// The whole frame is JavaScript's now: from here the guard may only answer for it.
		if ((kStateAwaitVerdict == mdb->state) && (mdb->rxHead == mdb->frameEnd))
			mdb->claimed = 1;
	}
	portEXIT_CRITICAL(&gMdbLock);

	if (word >= 0)
		xsmcSetInteger(xsResult, word);
}

void xs_mdbuart_write(xsMachine *the)
{
	Mdb mdb = xsmcGetHostDataValidate(xsThis, (void *)&xsMdbHooks);
	int word = xsmcToInteger(xsArg(0));
	int ok = 1;

	if ((word < 0) || (word > 0x1FF))
		xsRangeError("invalid word");
	portENTER_CRITICAL(&gMdbLock);
	if (word & MDB_MODE_BIT) {
		mdb->state = kStateIdle;		// a new block: nothing is owed any more
		mdbDisarm(mdb);
		ok = mdbQueue(mdb, (uint16_t)word, 0);
	}
	else if (kStateProxied == mdb->state) {
		// The guard already answered this frame: JavaScript's verdict stays here.
		if (word != mdb->proxied)
			mdb->overruled++;
		mdb->state = kStateIdle;
	}
	else {
		if (kStateAwaitVerdict == mdb->state) {
			mdb->state = kStateIdle;
			mdbDisarm(mdb);
		}
		ok = mdbQueue(mdb, (uint16_t)word, 0);
	}
	portEXIT_CRITICAL(&gMdbLock);
	if (!ok)
		xsUnknownError("output full");
}

void xs_mdbuart_get_stats(xsMachine *the)
{
	Mdb mdb = xsmcGetHostDataValidate(xsThis, (void *)&xsMdbHooks);
	xsmcVars(1);
	xsmcSetNewObject(xsResult);
	xsmcSetInteger(xsVar(0), mdb->withdrawn);
	xsmcSet(xsResult, xsID_withdrawn, xsVar(0));
	xsmcSetInteger(xsVar(0), mdb->proxiedCount);
	xsmcSet(xsResult, xsID_proxied, xsVar(0));
	xsmcSetInteger(xsVar(0), mdb->overruled);
	xsmcSet(xsResult, xsID_overruled, xsVar(0));
	xsmcSetInteger(xsVar(0), mdb->ambiguous);
	xsmcSet(xsResult, xsID_ambiguous, xsVar(0));
	xsmcSetInteger(xsVar(0), mdb->errors);
	xsmcSet(xsResult, xsID_errors, xsVar(0));
}

static void IRAM_ATTR mdbISR(void *arg)
{
	Mdb mdb = arg;
	uart_dev_t *hw = mdb->hw;
	uint32_t status = uart_ll_get_intsts_mask(hw);
	uint8_t wake = 0;

	portENTER_CRITICAL_ISR(&gMdbLock);
	if (status & UART_INTR_TX_DONE) {
		uart_ll_clr_intsts_mask(hw, UART_INTR_TX_DONE);
		uart_ll_disable_intr_mask(hw, UART_INTR_TX_DONE);
		mdbTransmitNext(mdb);
	}
	if (status & (UART_INTR_FRAM_ERR | UART_INTR_RXFIFO_OVF)) {
		mdb->errors++;
		mdb->frameDamaged = 1;
		if (status & UART_INTR_RXFIFO_OVF) {
			uart_ll_rxfifo_rst(hw);
			uart_ll_clr_intsts_mask(hw, UART_INTR_PARITY_ERR);	// its byte is gone
		}
	}
	// The raw flags first, then the FIFO count: a byte arriving in between is counted (and makes
	// the read ambiguous) rather than having its parity flag taken for the previous byte's.
	// hw->int_raw.val is uart_ll_get_intraw_mask(), which is only `static inline`: not forced
	// inline, so a compiler may leave it out of line, in flash.
	uint32_t raw = hw->int_raw.val;
	uint32_t pending = uart_ll_get_rxfifo_len(hw);
	uint8_t parityError = (raw & UART_INTR_PARITY_ERR) ? 1 : 0;
	// Clear only the error flags seen: one raised after the read belongs to a byte not read yet.
	// The parity flag is consumed only with a byte to pair it with: the receiver may raise it at
	// the parity bit, before the byte reaches the FIFO (so PARITY_ERR is not an enabled interrupt).
	uint32_t seen = raw & (UART_INTR_FRAM_ERR | UART_INTR_RXFIFO_OVF);
	if (pending)
		seen |= raw & UART_INTR_PARITY_ERR;
	else
		parityError = 0;
	uart_ll_clr_intsts_mask(hw, seen);
	if (pending > 1) {
		// Late by a character: the parity flag can no longer be paired with its byte.
		mdb->ambiguous++;
		mdb->frameDamaged = 1;
	}
	while (pending--) {
		uint8_t data;
		uart_ll_read_rxfifo(hw, &data, 1);
		// With several bytes waiting, the flag is given to the last (the likeliest mode byte).
		uint8_t error = pending ? 0 : parityError;
		uint16_t word = data | ((parity8(data) ^ error) ? MDB_MODE_BIT : 0);
		uint16_t next = (mdb->rxTail + 1) & MDB_RING_MASK;
		if (next == mdb->rxHead) {
			mdb->errors++;				// JavaScript is not reading at all
			continue;
		}
		if (0 == mdb->frameLength) {
			mdb->frameStart = mdb->rxTail;
			mdb->frameSum = 0;
		}
		mdb->rx[mdb->rxTail] = word;
		mdb->rxTail = next;
		mdb->frameLength++;
		wake = 1;
		if (word & MDB_MODE_BIT) {
			// The peripheral's last byte: a lone ACK or NAK needs no answer, anything else does.
			uint8_t lone = (1 == mdb->frameLength) && ((MDB_ACK == data) || (MDB_NAK == data));
			uint8_t good = (mdb->frameLength >= 2) && (mdb->frameSum == data) && !mdb->frameDamaged;
			mdb->frameEnd = mdb->rxTail;
			mdb->frameLength = 0;
			mdb->frameDamaged = 0;
			if (!lone) {
				mdb->state = kStateAwaitVerdict;
				mdb->claimed = 0;
				mdb->proxied = good ? MDB_ACK : MDB_NAK;
				mdbArm(mdb);
			}
		}
		else
			mdb->frameSum += data;
	}
	uart_ll_clr_intsts_mask(hw, UART_INTR_RXFIFO_FULL);		// after draining the FIFO
	if (wake && !mdb->posted)
		mdb->posted = 1;
	else
		wake = 0;
	portEXIT_CRITICAL_ISR(&gMdbLock);

	if (wake) {
		BaseType_t woken = pdFALSE;
		vTaskNotifyGiveFromISR(mdb->task, &woken);
		if (woken)
			portYIELD_FROM_ISR();
	}
}

/* GPTimer alarm (ISR, IRAM): t-response is running out and JavaScript has not answered. */
static bool IRAM_ATTR mdbGuard(gptimer_handle_t timer, const gptimer_alarm_event_data_t *event, void *arg)
{
	Mdb mdb = arg;
	(void)timer;
	(void)event;
	portENTER_CRITICAL_ISR(&gMdbLock);
	mdbDisarm(mdb);
	if (kStateAwaitVerdict == mdb->state) {
		if (!mdb->claimed) {
			// Take back what JavaScript has not read of the frame and refuse it: it comes again.
			uint16_t frame = (uint16_t)((mdb->frameEnd - mdb->frameStart) & MDB_RING_MASK);
			uint16_t read = (uint16_t)((mdb->rxHead - mdb->frameStart) & MDB_RING_MASK);
			mdb->rxTail = (read < frame) ? mdb->rxHead : mdb->frameStart;
			mdb->state = kStateIdle;
			mdb->withdrawn++;
			mdbQueue(mdb, MDB_NAK, 1);
		}
		else {
			// JavaScript is inside its handler: answer as it will, keep its answer when it comes.
			mdb->state = kStateProxied;
			mdb->proxiedCount++;
			mdbQueue(mdb, mdb->proxied, 1);
		}
	}
	portEXIT_CRITICAL_ISR(&gMdbLock);
	return false;
}

/* Wakes JavaScript: posting to the XS machine is not IRAM code, so the ISR only notifies this task. */
static void mdbTask(void *arg)
{
	Mdb mdb = arg;
	while (1) {
		ulTaskNotifyTake(pdTRUE, portMAX_DELAY);
		if (mdb->closing)
			break;
		__atomic_add_fetch(&mdb->useCount, 1, __ATOMIC_SEQ_CST);
		if (modMessagePostToMachine(mdb->the, NULL, 0, mdbDeliver, mdb)) {
			// The machine's queue is full: the next byte (or the next ISR) tries again.
			portENTER_CRITICAL(&gMdbLock);
			mdb->posted = 0;
			portEXIT_CRITICAL(&gMdbLock);
			mdbRelease(mdb);
		}
	}
	mdbRelease(mdb);
	vTaskDelete(NULL);
}

static void mdbDeliver(void *theIn, void *refcon, uint8_t *message, uint16_t messageLength)
{
	xsMachine *the = theIn;
	Mdb mdb = refcon;
	int count;
	(void)message;
	(void)messageLength;

	portENTER_CRITICAL(&gMdbLock);
	mdb->posted = 0;
	count = (mdb->rxTail - mdb->rxHead) & MDB_RING_MASK;
	portEXIT_CRITICAL(&gMdbLock);
	if (count && !mdb->closing) {
		xsBeginHost(the);
			xsmcSetInteger(xsResult, count);
			xsCallFunction1(xsReference(mdb->onReadable), mdb->obj, xsResult);
		xsEndHost(the);
	}
	mdbRelease(mdb);		// closed while the delivery was queued: freed here
}

static void mdbMark(xsMachine *the, void *it, xsMarkRoot markRoot)
{
	Mdb mdb = it;
	if (mdb->onReadable)
		(*markRoot)(the, mdb->onReadable);
}
