/*
 * Headless host for the Moddable `lin` build: loads the app's mc.so, launches its XS machine, and runs
 * the GLib main loop that the SDK's lin timers and sockets are built on. It plays the part of mcsim
 * without GTK or a display, so the firmware runs under CI-like conditions and in tools/firmware-lin.ts.
 *
 * Built by tools/firmware-lin.ts against the SDK's simulator header (no SDK code is copied here):
 *   cc -DmxLinux=1 -I$MODDABLE/build/simulators/modules headless.c $(pkg-config --cflags --libs glib-2.0) -ldl
 * Usage: headless path/to/mc.so. Exits 1 when XS aborts (for example when a fixed heap is exhausted).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "screen.h"

static void on_abort(txScreen *screen, int status)
{
	(void)screen;
	fprintf(stderr, "headless: XS aborted with status %d\n", status);
	fflush(stdout);
	exit(1);
}

static void on_nothing(txScreen *screen)
{
	(void)screen;
}

static void on_post(txScreen *screen, char *message, int size)
{
	(void)screen;
	(void)message;
	(void)size;
}

static void on_start(txScreen *screen, double interval)
{
	(void)screen;
	(void)interval;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: headless path/to/mc.so\n");
		return 2;
	}
	void *library = dlopen(argv[1], RTLD_NOW);
	if (!library) {
		fprintf(stderr, "headless: %s\n", dlerror());
		return 2;
	}
	txScreenLaunchProc launch = (txScreenLaunchProc)dlsym(library, "fxScreenLaunch");
	if (!launch) {
		fprintf(stderr, "headless: %s\n", dlerror());
		return 2;
	}
	/* A 1x1 "screen": the firmware draws nothing, but the launch code expects a txScreen. */
	txScreen *screen = calloc(1, sizeof(txScreen) + screenBytesPerPixel);
	if (!screen)
		return 2;
	screen->abort = on_abort;
	screen->bufferChanged = on_nothing;
	screen->formatChanged = on_nothing;
	screen->post = on_post;
	screen->start = on_start;
	screen->stop = on_nothing;
	mxCreateMutex(&screen->workersMutex);
	screen->width = 1;
	screen->height = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	(*launch)(screen);
	if (!screen->machine) {
		fprintf(stderr, "headless: the XS machine could not be created\n");
		return 1;
	}
	GMainLoop *loop = g_main_loop_new(NULL, FALSE);
	g_main_loop_run(loop);
	return 0;
}
