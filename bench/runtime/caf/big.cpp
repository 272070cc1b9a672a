// Savina big for CAF 0.17: W workers; each sends N pings, one at a time,
// to a neighbor picked at random (Park-Miller, seeded by the worker's
// index); a ping is answered with a pong, and each pong triggers the next
// ping. A worker whose N pongs came back tells the sink; the sink tells
// main once all W are done. Usage: big REPS W N. Counts 2*W*N messages.
#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace caf;
using ping_atom = atom_constant<atom("ping")>;
using pong_atom = atom_constant<atom("pong")>;
using peers_atom = atom_constant<atom("peers")>;
using start_atom = atom_constant<atom("start")>;
using done_atom = atom_constant<atom("done")>;

struct worker_state {
	std::vector<actor> peers;
	int64_t seed = 1;
	int sent = 0;
};

static behavior worker_actor(stateful_actor<worker_state> *self, actor sink, int index, int n)
{
	self->state.seed = index + 1;
	auto me = actor_cast<actor>(self);
	auto ping_random = [=] {
		auto &s = self->state;
		s.seed = s.seed * 48271 % 2147483647;
		s.sent++;
		self->send(s.peers[s.seed % s.peers.size()], ping_atom::value, me);
	};
	return {
		[=](peers_atom, const std::vector<actor> &peers) { self->state.peers = peers; },
		[=](start_atom) { ping_random(); },
		[=](ping_atom, const actor &from) { self->send(from, pong_atom::value); },
		[=](pong_atom) {
			if (self->state.sent == n)
				self->send(sink, done_atom::value);
			else
				ping_random();
		},
	};
}

struct sink_state {
	int left = 0;
};

static behavior sink_actor(stateful_actor<sink_state> *self, actor main, int w)
{
	self->state.left = w;
	return {[=](done_atom) {
		if (--self->state.left == 0)
			self->send(main, done_atom::value);
	}};
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		std::fprintf(stderr, "usage: %s REPS W N\n", argv[0]);
		return 2;
	}
	int reps = std::atoi(argv[1]), w = std::atoi(argv[2]), n = std::atoi(argv[3]);
	actor_system_config cfg;
	actor_system sys{cfg};
	std::vector<double> secs;
	for (int r = 0; r < reps; r++) {
		scoped_actor self{sys};
		auto sink = sys.spawn(sink_actor, actor_cast<actor>(self), w);
		std::vector<actor> workers;
		for (int i = 0; i < w; i++)
			workers.push_back(sys.spawn(worker_actor, sink, i, n));
		for (auto &x : workers)
			self->send(x, peers_atom::value, workers);
		auto t0 = std::chrono::steady_clock::now();
		for (auto &x : workers)
			self->send(x, start_atom::value);
		self->receive([](done_atom) {});
		auto t1 = std::chrono::steady_clock::now();
		secs.push_back(std::chrono::duration<double>(t1 - t0).count());
		for (auto &x : workers)
			self->send_exit(x, exit_reason::user_shutdown);
		self->send_exit(sink, exit_reason::user_shutdown);
	}
	std::sort(secs.begin(), secs.end());
	std::fprintf(stderr, "reps (s):");
	for (double x : secs)
		std::fprintf(stderr, " %.4f", x);
	std::fprintf(stderr, "\n");
	std::printf("RESULT big %.0f msgs/s\n", 2.0 * w * n / secs[secs.size() / 2]);
	return 0;
}
