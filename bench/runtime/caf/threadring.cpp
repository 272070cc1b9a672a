// Savina thread ring for CAF 0.17: A actors in a ring pass one token H
// times (each hop decrements it; the actor that sees 0 reports done).
// Usage: threadring REPS A H. Counts H+1 messages per rep.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace caf;
using next_atom = atom_constant<atom("next")>;
using token_atom = atom_constant<atom("token")>;
using done_atom = atom_constant<atom("done")>;

struct node_state {
	actor next;
};

static behavior node_actor(stateful_actor<node_state> *self, actor main)
{
	return {
		[=](next_atom, actor next) { self->state.next = next; },
		[=](token_atom, int hops) {
			if (hops == 0)
				self->send(main, done_atom::value);
			else
				self->send(self->state.next, token_atom::value, hops - 1);
		},
	};
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		std::fprintf(stderr, "usage: %s REPS A H\n", argv[0]);
		return 2;
	}
	int reps = std::atoi(argv[1]), a = std::atoi(argv[2]), h = std::atoi(argv[3]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		std::vector<actor> ring;
		for (int i = 0; i < a; i++)
			ring.push_back(sys.spawn(node_actor, actor_cast<actor>(self)));
		for (int i = 0; i < a; i++)
			self->send(ring[i], next_atom::value, ring[(i + 1) % a]);
		auto t0 = std::chrono::steady_clock::now();
		self->send(ring[0], token_atom::value, h);
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		for (auto &x : ring)
			self->send_exit(x, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT threadring %.0f msgs/s\n", (h + 1.0) / secs[secs.size() / 2]);
	return 0;
}
