/* Runs the no_std static library from C, with no Rust runtime at all, and checks every area.
 * Each function returns 0 on success or the number of the step that failed. */
#include <stdint.h>
#include <stdio.h>

int32_t aeschat_nostd_keys(uint8_t seed);
int32_t aeschat_nostd_tokens(uint16_t seed, uint64_t now);
int32_t aeschat_nostd_keyring(uint8_t seed, uint64_t now);
int32_t aeschat_nostd_errors(void);
int32_t aeschat_nostd_session(uint8_t seed, _Bool password);
int32_t aeschat_nostd_cpace(uint8_t seed);
#ifdef AESCHAT_GETRANDOM
int32_t aeschat_nostd_random(uint64_t now);
#endif

static int failures = 0;
static int runs = 0;

static void expect(const char *area, unsigned seed, int32_t status) {
    runs++;
    if (status != 0) {
        failures++;
        fprintf(stderr, "%s (seed %u): step %d failed\n", area, seed, (int)status);
    }
}

int main(void) {
    static const uint64_t times[] = {0, 1, 1700000000u, UINT64_MAX - 60, UINT64_MAX};
    for (unsigned seed = 0; seed < 256; seed++) {
        expect("keys", seed, aeschat_nostd_keys((uint8_t)seed));
        expect("keyring", seed, aeschat_nostd_keyring((uint8_t)seed, times[seed % 5]));
    }
    for (unsigned seed = 0; seed <= 1600; seed += 7) {
        expect("tokens", seed, aeschat_nostd_tokens((uint16_t)seed, times[seed % 5]));
    }
    expect("tokens", 1600, aeschat_nostd_tokens(1600, 1700000000u));
    expect("errors", 0, aeschat_nostd_errors());
    for (unsigned seed = 0; seed < 8; seed++) {
        expect("session (key file)", seed, aeschat_nostd_session((uint8_t)seed, 0));
        expect("session (password)", seed, aeschat_nostd_session((uint8_t)seed, 1));
    }
    for (unsigned seed = 0; seed < 16; seed++) {
        expect("cpace", seed, aeschat_nostd_cpace((uint8_t)seed));
    }
#ifdef AESCHAT_GETRANDOM
    for (unsigned i = 0; i < 16; i++) {
        expect("random", i, aeschat_nostd_random(times[i % 5]));
    }
#endif
    printf("%d of %d no_std checks passed\n", runs - failures, runs);
    return failures == 0 ? 0 : 1;
}
