/* `godwit serve`: the parent process (see server.c). */
#ifndef GODWIT_SERVER_H
#define GODWIT_SERVER_H

/* Runs the daemon in the foreground; returns the exit code. */
int serve_main(const char *config_path);

#endif
