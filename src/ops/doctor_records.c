/* temporary stub until ops/dns_records lands */
#include "ops/doctor_private.h"
void
doctor_records(struct doctor *d)
{
	(void)d;
}
