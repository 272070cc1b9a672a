// Savina counting for CAF 0.17: a producer sends N increments to a counter,
// then asks for the total and checks it.
// Usage: counting REPS N. Counts N+2 messages per rep.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace caf;
using inc_atom = atom_constant<atom("inc")>;
using get_atom = atom_constant<atom("get")>;
using start_atom = atom_constant<atom("start")>;
using done_atom = atom_constant<atom("done")>;

struct counter_state {
	long count = 0;
};

static behavior counter_actor(stateful_actor<counter_state> *self)
{
	return {
		[=](inc_atom) { self->state.count++; },
		[=](get_atom) {
			self->send(actor_cast<actor>(self->current_sender()), self->state.count);
		},
	};
}

static behavior producer_actor(event_based_actor *self, actor counter, actor main, long n)
{
	return {
		[=](start_atom) {
			for (long i = 0; i < n; i++)
				self->send(counter, inc_atom::value);
			self->send(counter, get_atom::value);
		},
		[=](long total) {
			if (total != n)
				std::fprintf(stderr, "counting: got %ld, want %ld\n", total, n);
			self->send(main, done_atom::value);
		},
	};
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		std::fprintf(stderr, "usage: %s REPS N\n", argv[0]);
		return 2;
	}
	int reps = std::atoi(argv[1]);
	long n = std::atol(argv[2]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		auto counter = sys.spawn(counter_actor);
		auto producer = sys.spawn(producer_actor, counter, actor_cast<actor>(self), n);
		auto t0 = std::chrono::steady_clock::now();
		self->send(producer, start_atom::value);
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		self->send_exit(producer, exit_reason::user_shutdown);
		self->send_exit(counter, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT counting %.0f msgs/s\n", (n + 2.0) / secs[secs.size() / 2]);
	return 0;
}
