// Idle actors for CAF 0.17: spawns N actors that wait for a message, from
// the main thread, then round-trips one ping to the last one. Prints the
// spawn rate (N / time of spawns + that ping) and the RSS growth per actor
// (resident pages from /proc/self/statm, after minus before, / N).
// Usage: idle N. Exits without tearing the actors down.
#include <caf/all.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unistd.h>
#include <vector>

using namespace caf;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;

static long rss_bytes()
{
	long size = 0, resident = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");
	if (!f || std::fscanf(f, "%ld %ld", &size, &resident) != 2)
		std::abort();
	std::fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

static behavior idle_actor(event_based_actor *self)
{
	return {[=](ping_atom) {
		self->send(actor_cast<actor>(self->current_sender()), pong_atom::value);
	}};
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		std::fprintf(stderr, "usage: %s N\n", argv[0]);
		return 2;
	}
	int n = std::atoi(argv[1]);
	actor_system_config cfg;
	actor_system sys{cfg};
	scoped_actor self{sys};
	std::vector<actor> keep; // CAF stops actors nobody refers to
	keep.reserve(n);
	long before = rss_bytes();
	auto t0 = std::chrono::steady_clock::now();
	for (int i = 0; i < n; i++)
		keep.push_back(sys.spawn(idle_actor));
	self->send(keep.back(), ping_atom::value);
	self->receive([](pong_atom) {});
	auto t1 = std::chrono::steady_clock::now();
	long after = rss_bytes();
	double s = std::chrono::duration<double>(t1 - t0).count();
	std::printf("RESULT spawn %.0f spawns/s\n", n / s);
	std::printf("RESULT idle_bytes %.0f bytes/actor\n", (double)(after - before) / n);
	// Tearing down a million CAF actors takes tens of seconds and is not
	// what this measures: leave without it.
	std::fflush(stdout);
	_exit(0);
}
