// Savina fork-join creation for CAF 0.17: the main thread spawns N workers
// and sends each one message; a worker does a little arithmetic, tells the
// sink and stops; the sink tells main when all N are done.
// Usage: fjcreate REPS N. Counts N (spawn + message) per rep.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace caf;
using work_atom = atom_constant<atom("work")>;
using done_atom = atom_constant<atom("done")>;

static behavior worker_actor(event_based_actor *self, actor sink)
{
	return {[=](work_atom, int i) {
		double x = std::sin(37.2 + i);
		self->send(sink, done_atom::value, x * x);
		self->quit();
	}};
}

struct sink_state {
	int left = 0;
};

static behavior sink_actor(stateful_actor<sink_state> *self, actor main, int n)
{
	self->state.left = n;
	return {[=](done_atom, double) {
		if (--self->state.left == 0)
			self->send(main, done_atom::value);
	}};
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: %s REPS N\n", argv[0]);
		return 2;
	}
	int reps = std::atoi(argv[1]), n = std::atoi(argv[2]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		auto sink = sys.spawn(sink_actor, actor_cast<actor>(self), n);
		auto t0 = std::chrono::steady_clock::now();
		for (int i = 0; i < n; i++) {
			auto w = sys.spawn(worker_actor, sink);
			self->send(w, work_atom::value, i);
		}
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		self->send_exit(sink, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT fjcreate %.0f msgs/s\n", (double)n / secs[secs.size() / 2]);
	return 0;
}
