// Savina fork-join throughput for CAF 0.17: the main thread sends N
// messages to each of A workers (round by round); each message costs a
// little arithmetic; a worker that got N tells the sink, the sink tells
// main when all A are done.
// Usage: fjthrput REPS A N. Counts A*N messages per rep.
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

struct worker_state {
	int count = 0;
	double acc = 0;
};

static behavior worker_actor(stateful_actor<worker_state> *self, actor sink, int n)
{
	return {[=](work_atom) {
		auto &s = self->state;
		double x = std::sin(37.2 + s.count);
		s.acc += x * x;
		if (++s.count == n)
			self->send(sink, done_atom::value, s.acc);
	}};
}

struct sink_state {
	int left = 0;
};

static behavior sink_actor(stateful_actor<sink_state> *self, actor main, int a)
{
	self->state.left = a;
	return {[=](done_atom, double) {
		if (--self->state.left == 0)
			self->send(main, done_atom::value);
	}};
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		std::fprintf(stderr, "usage: %s REPS A N\n", argv[0]);
		return 2;
	}
	int reps = std::atoi(argv[1]), a = std::atoi(argv[2]), n = std::atoi(argv[3]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		auto sink = sys.spawn(sink_actor, actor_cast<actor>(self), a);
		std::vector<actor> workers;
		for (int i = 0; i < a; i++)
			workers.push_back(sys.spawn(worker_actor, sink, n));
		auto t0 = std::chrono::steady_clock::now();
		for (int m = 0; m < n; m++)
			for (auto &w : workers)
				self->send(w, work_atom::value);
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		for (auto &w : workers)
			self->send_exit(w, exit_reason::user_shutdown);
		self->send_exit(sink, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT fjthrput %.0f msgs/s\n", (double)a * n / secs[secs.size() / 2]);
	return 0;
}
