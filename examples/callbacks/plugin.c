/* plugin.so (soname "plugin.so": the object name a patch uses for it): loaded and unloaded by
 * app on command. Its constructor prints what plugin_hello() says as it loads, so a patch
 * applied to the loading object (before its constructors run) shows there too. */
#include <stdio.h>

__attribute__((noinline)) const char *plugin_hello(void) { return "hello from plugin v1"; }

__attribute__((constructor)) static void plugin_init(void) {
    printf("plugin init: %s\n", plugin_hello());
    fflush(stdout);
}
