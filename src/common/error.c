/*
 * error.c - sentences and names for the MTR_E* codes of metronome.h, from the
 * one X-macro table there.
 */
#include "metronome.h"

MTR_API const char *mtr_strerror(int code)
{
	switch (code) {
	case MTR_OK:
		return "success";
#define X(name, value, text) \
	case MTR_E##name:    \
		return text;
		MTR_ERRNO_MAP(X)
#undef X
	}
	return "unknown error";
}

MTR_API const char *mtr_errname(int code)
{
	switch (code) {
	case MTR_OK:
		return "MTR_OK";
#define X(name, value, text) \
	case MTR_E##name:    \
		return "MTR_E" #name;
		MTR_ERRNO_MAP(X)
#undef X
	}
	return "MTR_E?";
}
