// Savina ping-pong for CAF 0.17: two actors bounce one message N times.
// Usage: pingpong REPS N. Counts 2N messages (ping + pong) per rep and
// prints "RESULT pingpong <msgs/s> msgs/s" from the median rep.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace caf;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using start_atom = atom_constant<atom("start")>;
using done_atom = atom_constant<atom("done")>;

static behavior pong_actor(event_based_actor *self)
{
	return {[=](ping_atom) {
		self->send(actor_cast<actor>(self->current_sender()), pong_atom::value);
	}};
}

struct ping_state {
	int left = 0;
};

static behavior ping_actor(stateful_actor<ping_state> *self, actor pong, actor main, int n)
{
	self->state.left = n;
	return {
		[=](start_atom) { self->send(pong, ping_atom::value); },
		[=](pong_atom) {
			if (--self->state.left > 0)
				self->send(pong, ping_atom::value);
			else
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
	int reps = std::atoi(argv[1]), n = std::atoi(argv[2]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		auto pong = sys.spawn(pong_actor);
		auto ping = sys.spawn(ping_actor, pong, actor_cast<actor>(self), n);
		auto t0 = std::chrono::steady_clock::now();
		self->send(ping, start_atom::value);
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		self->send_exit(ping, exit_reason::user_shutdown);
		self->send_exit(pong, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT pingpong %.0f msgs/s\n", 2.0 * n / secs[secs.size() / 2]);
	return 0;
}
