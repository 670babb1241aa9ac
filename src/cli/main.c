#include <stdio.h>
#include <string.h>
int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--version")) {
        printf("chainz %s\n", CHAINZ_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: chainz --version\n");
    return 1;
}
