// trunkguard console: the recording player. The page works without this file (the browser's own
// audio controls, the forms); with it, ±10 s, speed, and which voice to hear: the WAV's left
// channel is the agent (PBX leg), the right one the customer (carrier leg). Web Audio splits the
// two channels and sends the chosen one to both ears (or each to its own side for "both").
(function () {
  'use strict';

  function setUp(root) {
    var audio = root.querySelector('audio');
    if (!audio) return;
    var context = null;
    var splitter = null;
    var merger = null;
    var analyser = null;
    var channel = 'both';
    var levels = null;
    var meter = root.querySelector('meter');

    function route() {
      root.setAttribute('data-channel', channel);
      if (!splitter) return;
      splitter.disconnect();
      if (channel === 'agent') {
        splitter.connect(merger, 0, 0);
        splitter.connect(merger, 0, 1);
      } else if (channel === 'customer') {
        splitter.connect(merger, 1, 0);
        splitter.connect(merger, 1, 1);
      } else {
        splitter.connect(merger, 0, 0);
        splitter.connect(merger, 1, 1);
      }
    }

    function level() {
      if (!analyser) return;
      analyser.getFloatTimeDomainData(levels);
      var sum = 0;
      for (var i = 0; i < levels.length; i++) sum += levels[i] * levels[i];
      if (meter) meter.value = Math.min(1, Math.sqrt(sum / levels.length) * 4);
      if (!audio.paused) window.requestAnimationFrame(level);
    }

    // The graph is made on the first play or channel choice (a person's gesture: browsers
    // start audio contexts only then).
    function graph() {
      if (context) return;
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      context = new Context();
      var source = context.createMediaElementSource(audio);
      splitter = context.createChannelSplitter(2);
      merger = context.createChannelMerger(2);
      analyser = context.createAnalyser();
      analyser.fftSize = 2048;
      levels = new Float32Array(analyser.fftSize);
      source.connect(splitter);
      merger.connect(analyser);
      analyser.connect(context.destination);
      route();
      // What is heard, for whoever wants to look (the level meter, a test).
      window.tgPlayer = { audio: audio, context: context, analyser: analyser };
    }

    audio.addEventListener('play', function () {
      graph();
      if (context && context.state === 'suspended') context.resume();
      window.requestAnimationFrame(level);
    });

    var play = root.querySelector('#play');
    if (play) {
      play.addEventListener('click', function () {
        if (audio.paused) audio.play(); else audio.pause();
      });
      var show = function () {
        var playing = !audio.paused;
        play.textContent = play.getAttribute(playing ? 'data-pause' : 'data-play');
      };
      audio.addEventListener('play', show);
      audio.addEventListener('pause', show);
      audio.addEventListener('ended', show);
    }

    root.querySelectorAll('button[data-seek]').forEach(function (b) {
      b.addEventListener('click', function () {
        var to = audio.currentTime + Number(b.getAttribute('data-seek'));
        var end = isFinite(audio.duration) ? audio.duration : to;
        audio.currentTime = Math.max(0, Math.min(end, to));
      });
    });

    var speed = root.querySelector('#speed');
    if (speed) {
      speed.addEventListener('change', function () {
        audio.playbackRate = Number(speed.value) || 1;
      });
    }

    root.querySelectorAll('input[name="channel"]').forEach(function (r) {
      r.addEventListener('change', function () {
        if (!r.checked) return;
        channel = r.value;
        graph();
        route();
      });
    });
    route();
  }

  // A table that refreshes itself (live calls): its rows are fetched again every few seconds
  // and put in place, unless something in it has the focus (a button about to be pressed). An
  // answer that is not a fragment means the session ended: the page reloads (to the sign-in).
  function refresh(body) {
    var url = body.getAttribute('data-refresh');
    var every = Number(body.getAttribute('data-every')) || 3000;
    window.setInterval(function () {
      if (body.contains(document.activeElement)) return;
      window.fetch(url, { credentials: 'same-origin' }).then(function (r) {
        if (!r.ok || r.headers.get('X-Console-Fragment') !== '1') {
          window.location.reload();
          return null;
        }
        return r.text();
      }).then(function (html) {
        if (html !== null && html !== undefined) {
          body.innerHTML = html;
          body.setAttribute('data-refreshed', String(Date.now()));
        }
      }).catch(function () { /* the next round tries again */ });
    }, every);
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('[data-player]').forEach(setUp);
    document.querySelectorAll('[data-refresh]').forEach(refresh);
  });
})();
