#include "netfault.h"
int main(void)
{
    h_begin("stub");
    return h_done();
}
